"""What serve-api serves: bare chat models, and the course assistant as `courselab/<template>`.

Each served name is loaded once: the `ModelPool` builds models under one lock, so
concurrent first requests wait for a single load instead of racing (two threads
importing transformers at once fail with "cannot import name ..."). Generation on
one model is serialised by the model's own lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import InputError, ModelError, UnknownModelError

ASSISTANT_PREFIX = "courselab/"
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_ASSISTANTS = 64  # distinct (template, k, mode) kept loaded


class ContextLengthError(InputError):
    """A prompt that does not fit the model's window with the tokens asked for."""


@dataclass
class Reply:
    """A finished completion: the text, why it ended, token counts, extra fields."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict = field(default_factory=dict)

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def _finish(output_tokens: int, limit: int, said: str | None = None) -> str:
    """The model's own finish reason when it gives one, else guessed from the count."""
    if said in ("stop", "length"):
        return said
    return "length" if output_tokens >= limit else "stop"


class BareModel:
    """A registry model answering the messages as given."""

    def __init__(self, model):
        self.model = model

    def _limit(self, request) -> int:
        options = getattr(self.model, "options", None)
        return request.limit or (options.max_new_tokens if options else 96)

    def check(self, request) -> None:
        """A 400 before generation when the prompt and the asked tokens exceed the window."""
        if request.k is not None or request.retrieval_mode is not None:
            raise InputError("k and retrieval_mode apply to courselab/<template> models only")
        if not hasattr(self.model, "count_tokens"):
            return
        prompt = self.model.render(request.lc_messages())
        used = self.model.count_tokens(prompt)
        reserve = self._limit(request) if getattr(self.model, "kind", "causal") == "causal" else 0
        window = self.model.input_window()
        if used + reserve > window:
            raise ContextLengthError(
                f"this model's maximum context length is {window} tokens; the messages take "
                f"{used} and the completion asks for {reserve}: shorten the messages or max_tokens")

    def complete(self, request) -> Reply:
        reply = self.model.invoke(request.lc_messages(), **request.options())
        usage = reply.usage_metadata or {}
        out = usage.get("output_tokens", 0)
        said = (reply.response_metadata or {}).get("finish_reason")
        return Reply(str(reply.content), _finish(out, self._limit(request), said),
                     usage.get("input_tokens", 0), out)

    def stream(self, request) -> Iterator[str | Reply]:
        """Text pieces, then the final Reply (closing the iterator stops generation)."""
        usage: dict = {}
        said = None
        stream = self.model.stream(request.lc_messages(), **request.options())
        try:
            for chunk in stream:
                usage = chunk.usage_metadata or usage
                said = (getattr(chunk, "response_metadata", None) or {}).get("finish_reason", said)
                if chunk.content:
                    yield str(chunk.content)
        finally:
            stream.close()
        out = usage.get("output_tokens", 0)
        yield Reply("", _finish(out, self._limit(request), said), usage.get("input_tokens", 0), out)


class CourseModel:
    """The course assistant: retrieval, template, abstention; the reply is what the student
    reads first (`lead` when the answer has one), the whole answer card in `extra`."""

    def __init__(self, assistant):
        self.assistant = assistant

    def _limit(self) -> int:
        generation = getattr(self.assistant.template, "generation", {}) or {}
        if "max_new_tokens" in generation:
            return generation["max_new_tokens"]
        options = getattr(self.assistant.model, "options", None)
        return options.max_new_tokens if options else 96

    def check(self, request) -> None:
        from assistant.chain import check_question

        check_question(request.question())

    def _reply(self, answer) -> Reply:
        error = getattr(answer, "error", None)
        if error:  # a failed generation is an error, not an empty 200
            from assistant.models.scheduler import ModelBusyError

            raise (ModelBusyError if " is busy" in str(error) else ModelError)(str(error))
        tokens = answer.tokens or {}
        text = getattr(answer, "lead", None) or answer.answer
        # the model's own finish reason; guessed from the count for a reply that has none (cached)
        finish = "stop" if answer.abstained else _finish(tokens.get("output", 0), self._limit(),
                                                         getattr(answer, "finish", None))
        card = {**answer.to_dict(), "question": getattr(answer, "question", None)}  # as searched
        return Reply(text, finish, tokens.get("input", 0), tokens.get("output", 0),
                     {"courselab": card})

    def complete(self, request) -> Reply:
        return self._reply(self.assistant.answer(request.question()))

    def stream(self, request) -> Iterator[str | Reply]:
        """'' per generated piece (so a client that left is noticed), then the Reply.

        Subtle: the text is sent whole at the end, not token by token, because what the
        student reads first (`lead`) may be the course's quote rather than the model's words.
        """
        pieces = self.assistant.stream(request.question())
        try:
            for piece in pieces:
                if isinstance(piece, str):
                    yield ""
                elif hasattr(piece, "to_dict") and hasattr(piece, "tokens"):  # the Answer
                    yield self._reply(piece)
        finally:
            pieces.close()


def template_names(prompts_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(prompts_dir).glob("*.yaml")
                  if _TEMPLATE_NAME.fullmatch(p.stem))


class ModelPool:
    """Served names -> loaded backends, each built once, under one lock."""

    def __init__(self, names: list[str], settings, build_model: Callable | None = None,
                 build_assistant: Callable | None = None):
        self.names, self.settings = list(names), settings
        self._build_model = build_model or _registry_model
        self._build_assistant = build_assistant or _course_assistant
        self._ready: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self.loads: list[tuple] = []  # what was built, in order (tests check there is no duplicate)

    def check(self) -> None:
        """Every served model can be built (its weights are here), without loading it."""
        for name in self.names:
            self._build_model(self.settings, name)

    def served(self) -> list[str]:
        return self.names + [ASSISTANT_PREFIX + t for t in template_names(self.settings.prompts_dir)]

    def get(self, name: str, k: int | None = None, mode: str | None = None):
        key = self._key(name, k, mode)
        ready = self._ready.get(key)
        if ready is not None:
            return ready
        with self._lock:  # subtle: checked again: another request may have loaded it meanwhile
            return self._ensure(key)

    def _ensure(self, key: tuple):
        if key not in self._ready:
            if len(self._ready) >= len(self.names) + MAX_ASSISTANTS:
                raise InputError("too many assistant configurations loaded; restart serve-api")
            self._ready[key] = self._load(key)
            self.loads.append(key)
        return self._ready[key]

    def _key(self, name: str, k: int | None, mode: str | None) -> tuple:
        if name in self.names:
            return ("model", name)
        template = name.removeprefix(ASSISTANT_PREFIX)
        if name.startswith(ASSISTANT_PREFIX) and template in template_names(self.settings.prompts_dir):
            return ("assistant", template, k or self.settings.k, mode or self.settings.retrieval_mode)
        raise UnknownModelError(f"model {name[:200]!r} is not served; served: {', '.join(self.served())}")

    def _load(self, key: tuple):
        if key[0] == "model":
            model = self._build_model(self.settings, key[1])
            if hasattr(model, "load"):
                model.load()  # inside the lock: imports and weights once
            return BareModel(model)
        _, template, k, mode = key
        settings = self.settings.model_copy(update={"k": k, "retrieval_mode": mode})
        bare = self._ensure(("model", self.names[0]))
        assistant = self._build_assistant(settings, self.names[0], template)
        self._share_weights(assistant.model, bare.model)
        return CourseModel(assistant)

    @staticmethod
    def _share_weights(model, source) -> None:
        """The assistant's model reuses the bare model's loaded weights (no second load)."""
        same = getattr(model, "model_name", None) == getattr(source, "model_name", "")
        if same and hasattr(source, "share") and hasattr(model, "share"):
            model.share(source)  # same weights, lock and batcher: their requests share batches
        elif hasattr(model, "load"):
            model.load()


def _registry_model(settings, name: str):
    from assistant.models import model_for

    return model_for(settings, name)


def _course_assistant(settings, model_name: str, template: str):
    from assistant.chain.factory import build_assistant

    return build_assistant(settings, model_name, template)
