"""What the app shares between its users: the index, the loaded models, the feedback file.

Nothing heavy loads at construction. `start()` loads the index and the default
model in a background thread, so the page is up within seconds; until then,
`status()` says what is loading and `wait()` lets a request hold on for it.
Sessions never share conversation state: that lives in each browser.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.chain import Answer, Prepared, check_question
from assistant.chain.followup import rewrite
from assistant.config import Settings
from assistant.errors import CourselabError, InputError, TemplateError
from assistant.feedback import TurnLog

log = logging.getLogger("courselab")

MAX_K = 20  # passages per question from the app (each is embedded and shown)
MAX_COMPARE_CELLS = 32  # template x model cards of one comparison (each is an answer)


@dataclass
class Turn:
    """One question of a conversation and its Answer, as kept by the browser and voted on."""

    question: str
    query: str
    answer: Answer | None = None
    template: str = ""
    device: str = ""
    error: str | None = None
    id: str = ""  # the server's record of this turn, for votes (see feedback.TurnLog)

    def to_dict(self) -> dict:
        card = self.answer.to_dict() if self.answer else {"answer": "", "sources": []}
        return {**card, "id": self.id, "question": self.question, "query": self.query,
                "template": self.template or card.get("template", ""), "device": self.device,
                "error": self.error or card.get("error")}


class Service:
    """The index, models and templates behind the app, loaded once and shared."""

    def __init__(self, settings: Settings, model: str | None = None, template: str = "default",
                 allowed_models: list[str] | None = None):
        self.settings = settings
        self.default_model = model or settings.model
        self.default_template = template
        self._extra_models = list(allowed_models or [])  # more names the operator allows
        self._allowed: list[str] | None = None
        self._retriever = None
        self._ready = threading.Event()
        self._lock = threading.Lock()  # the retriever: held briefly
        self._corpus_lock = threading.Lock()  # one corpus change at a time; answers never wait
        self._status = "starting"
        self.turns = TurnLog()  # answers given, by id, for votes
        self.error: str | None = None

    # --- start-up ------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Load the index and the default model in the background."""
        thread = threading.Thread(target=self.load, name="courselab-load", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        try:
            self._status = "building or opening the course index"
            retriever = self.retriever()
            retriever.search("warm-up", 1)  # loads the embedder and the keyword index
            self._status = f"loading the model {self.default_model}"
            model = self.model(self.default_model)
            if hasattr(model, "load"):
                model.load()
            self._status = "ready"
        except Exception as e:  # any failure, not only ours: never "Ready" with nothing loaded
            self.error = str(e) if isinstance(e, CourselabError) else f"{type(e).__name__}: {e}"
            self._status = "failed"
            log.error("courselab: %s", self.error)
        finally:
            self._ready.set()

    def status(self) -> str:
        return self._status

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading finished; True when it succeeded."""
        self._ready.wait(timeout)
        return self.ready

    def require_ready(self) -> None:
        if not self._ready.is_set():
            raise InputError(f"still starting: {self._status}")
        if self.error:
            raise InputError(f"the app could not start: {self.error}")

    # --- parts ---------------------------------------------------------------------------
    def retriever(self):
        with self._lock:
            if self._retriever is None:
                from assistant.chain.factory import open_retriever

                self._retriever = open_retriever(self.settings, notify=log.info)
            return self._retriever

    def allowed_models(self) -> list[str]:
        """What visitors may use: the operator's model(s), and registry models whose weights
        are already here. Never a URL or a hub id from a request, never `fake` unless configured.
        """
        if self._allowed is None:
            from assistant.models import MODELS

            present = []
            for name, spec in MODELS.items():
                try:
                    if name != "fake" and spec.available():
                        present.append(name)
                except CourselabError:
                    continue
            self._allowed = list(dict.fromkeys([self.default_model, *self._extra_models,
                                                *present]))
        return self._allowed

    def missing_models(self) -> list[str]:
        """Registry models not offered because their weights are not on this machine."""
        from assistant.models import MODELS

        missing = []
        for name, spec in MODELS.items():
            try:
                present = spec.available()
            except CourselabError:
                present = False
            if name != "fake" and not present and name not in self.allowed_models():
                missing.append(name)
        return missing

    def check_model(self, name) -> str:
        """The name when this app offers it, else an InputError listing what it offers."""
        if not isinstance(name, str) or name not in self.allowed_models():
            shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
            raise InputError(f"model {shown} is not offered by this app; choose one of: "
                             f"{', '.join(self.allowed_models())}")
        return name

    def check_k(self, k) -> int:
        """k as an int between 1 and MAX_K, else an InputError."""
        try:
            value = int(k)
        except (TypeError, ValueError, OverflowError):
            raise InputError("k must be a whole number") from None
        if not 1 <= value <= MAX_K or (isinstance(k, float) and k != value):
            raise InputError(f"k must be a whole number from 1 to {MAX_K}")
        return value

    def model(self, name: str):
        """An allowed chat model, shared by every session and front end (chain/factory.py
        keeps a few loaded; the default model is never unloaded)."""
        from assistant.chain.factory import load_model

        self.check_model(name)
        return load_model(self.settings, name, pin=name == self.default_model)

    def templates(self) -> list[str]:
        names = sorted(p.stem for p in Path(self.settings.prompts_dir).glob("*.yaml"))
        return names or [self.default_template]

    def template_file(self, name: str) -> Path:
        """The file of a library template by name (never a path from a request)."""
        from assistant.prompts import template_path

        if name not in self.templates():
            raise TemplateError(f"unknown template {name!r}; choose one of: "
                                f"{', '.join(self.templates())}")
        return template_path(name, self.settings.prompts_dir)

    def template(self, name: str):
        from assistant.prompts import load_template

        return load_template(self.template_file(name))

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for a selector: the allowed models, the default first."""
        return [(f"{name} (default)" if name == self.default_model else name, name)
                for name in self.allowed_models()]

    def assistant(self, model: str, template: str, k: int):
        from assistant.chain import CourseAssistant

        return CourseAssistant(self.retriever(), self.model(model), self.template(template), k=k,
                               min_score=self.settings.min_score)

    def device_of(self, model) -> str:
        loaded = getattr(model, "_loaded", None)
        if loaded is not None:
            return str(loaded.device)
        return "remote" if getattr(model, "openai_api_base", None) else "cpu"

    # --- answering -----------------------------------------------------------------------
    def answer_stream(self, question: str, earlier: list[str], model: str | None = None,
                      template: str | None = None, k: int | None = None
                      ) -> Iterator[Prepared | str | Turn]:
        """The prepared question (its quote), text pieces as they come, then the finished Turn.

        `earlier`: the previous queries of the conversation, for rewriting follow-ups.
        """
        question = check_question(question)
        self.require_ready()
        model, template = model or self.default_model, template or self.default_template
        query = rewrite(question, earlier)
        assistant = self.assistant(model, template, k or self.settings.k)
        for piece in assistant.stream(query):
            if isinstance(piece, Answer):
                turn = Turn(question, query, piece, template, self.device_of(assistant.model))
                turn.id = self.turns.remember(turn.to_dict())
                yield turn
            else:
                yield piece

    def answer(self, question: str, earlier: list[str], **kwargs) -> Turn:
        *_, turn = self.answer_stream(question, earlier, **kwargs)
        return turn

    # --- corpus --------------------------------------------------------------------------
    def search(self, query: str, k: int) -> list:
        self.require_ready()
        return self.retriever().search(check_question(query), self.check_k(k))

    def sections(self) -> dict[str, list]:
        """Chunks of the index grouped by section path, in corpus order."""
        self.require_ready()
        grouped: dict[str, list] = {}
        for chunk in self.retriever().index.all_chunks():
            grouped.setdefault(chunk.section, []).append(chunk)
        return grouped

    def add_files(self, files: list[tuple[str, bytes]],
                  progress: Callable[[int, int], None] | None = None) -> str:
        """Add uploaded files to the corpus and index them; all or nothing.

        Only other corpus changes wait for this: answers go on with the index as it was.
        """
        from assistant.chain.factory import sync_index
        from assistant.corpus.uploads import add_files, remove_files

        self.require_ready()
        if self.settings.chroma_url:
            raise InputError("this app reads a shared Chroma server; add files where it is indexed")
        with self._corpus_lock:
            retriever = self.retriever()
            written = add_files(files, self.settings.corpus_dir)
            try:
                report = sync_index(retriever.index, self.settings, progress=progress)
            except Exception:  # all or nothing, whatever failed: the corpus as it was
                remove_files(written)
                try:
                    sync_index(retriever.index, self.settings)
                except Exception as e:  # the next start completes it; the first error matters
                    log.error("courselab: restoring the index after a failed upload: %s", e)
                raise
            retriever.refresh()
        names = ", ".join(p.name for p in written)
        return f"added {names}: {report.summary()}"

    def uploaded_files(self) -> list[str]:
        """Names of the files visitors added (only these can be removed from the app)."""
        from assistant.corpus.uploads import uploaded_names

        return uploaded_names(self.settings.corpus_dir)

    def remove_file(self, name: str) -> str:
        """Take an uploaded file out of the corpus and the index."""
        from assistant.chain.factory import sync_index
        from assistant.corpus.uploads import remove_upload

        self.require_ready()
        if self.settings.chroma_url:
            raise InputError("this app reads a shared Chroma server; remove files where it is "
                             "indexed")
        with self._corpus_lock:
            retriever = self.retriever()
            remove_upload(name, self.settings.corpus_dir)
            try:
                report = sync_index(retriever.index, self.settings)
            finally:
                retriever.refresh()  # the keyword index follows what the vector index holds
        return f"removed {name}: {report.summary()}"

    # --- prompt lab ----------------------------------------------------------------------
    def compare(self, question: str, templates: list[str], models: list[str], k: int):
        """Every template x model on one retrieval (see assistant.lab)."""
        from assistant.lab import compare

        question, k = check_question(question), self.check_k(k)
        self.require_ready()
        # a name twice is one card (an API call may repeat a name a hundred times)
        templates, models = list(dict.fromkeys(templates or [])), list(dict.fromkeys(models or []))
        if not templates or not models:
            raise InputError("choose at least one template and one model")
        if len(templates) * len(models) > MAX_COMPARE_CELLS:
            raise InputError(f"choose at most {MAX_COMPARE_CELLS} template x model pairs "
                             f"({len(templates)} x {len(models)} asked)")
        chosen = [self.template(n) for n in templates]
        loaded = {}
        for name in models:
            try:
                loaded[name] = self.model(name)
            except CourselabError as e:
                raise InputError(f"model {name}: {e}") from None
        return compare(self.retriever(), question, chosen, loaded, k, self.settings.min_score)

    def template_text(self, name: str) -> str:
        """A template file's text, broken ones too (to fix them in the lab's editor)."""
        from assistant.files import read_text
        from assistant.prompts.templates import MAX_TEMPLATE_BYTES

        return read_text(self.template_file(name), TemplateError, MAX_TEMPLATE_BYTES)

    def check_template(self, text: str):
        from assistant.prompts import parse_template

        return parse_template(text, "the edited template", self.settings.prompts_dir)

    def save_template(self, text: str, overwrite: bool = False) -> Path:
        """Save a template from the lab: a new name, or (confirmed) one saved from the lab
        before. Library templates, the app's default above all, are never replaced from here."""
        from assistant.prompts import save_template

        prompts = Path(self.settings.prompts_dir)
        with self._corpus_lock:
            saved = _lab_saved(prompts)
            protected = {n for n in self.templates() if n not in saved} | {self.default_template}
            path = save_template(text, prompts, overwrite, protected=protected)
            if path.stem not in saved:
                _write_lab_saved(prompts, [*saved, path.stem])
            return path

    # --- feedback ------------------------------------------------------------------------
    def vote(self, turn_id: str, vote: str) -> dict:
        """Write the feedback row for a vote on an answer this server gave (by its id only:
        the browser never supplies the question or answer that become a reference)."""
        return self.turns.vote(turn_id, vote, self.settings.feedback_path)

    def voted(self, turn_id: str) -> str | None:
        """The vote already saved for an answer ('up' or 'down'), or None."""
        return self.turns.voted(turn_id)


LAB_SAVED = ".lab-saved"  # names of the templates saved from the Prompt Lab, one a line


def _lab_saved(prompts: Path) -> list[str]:
    try:
        return (prompts / LAB_SAVED).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return []


def _write_lab_saved(prompts: Path, names: list[str]) -> None:
    from assistant.files import write_atomic

    write_atomic(prompts / LAB_SAVED, "".join(f"{n}\n" for n in dict.fromkeys(names)))
