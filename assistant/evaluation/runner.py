"""Run a suite: every item x template x model x retrieval setting x repeat, resumably.

Each item is retrieved once per retrieval setting and shared by every template and
model. Generation goes through the model's batched path, and through a cache keyed on
model, options and rendered prompt, so an unchanged cell costs nothing to rerun.
Rows are appended to results.jsonl batch by batch (flushed to disk); a run killed at
any moment resumes where it stopped, with nothing lost or counted twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.chain.cache import GenerationCache
from assistant.config import Settings
from assistant.datasets import Row, load_dataset, select, with_ids
from assistant.errors import CourselabError, InputError
from assistant.evaluation.metrics import METRICS, Sample
from assistant.evaluation.suite import Suite
from assistant.files import read_text
from assistant.text import contains_context

BATCH = 16
RESULTS = "results.jsonl"
JUDGE_FIELDS = frozenset({"question", "answer", "reference"})  # what a judge prompt may use


@dataclass(frozen=True)
class Config:
    """One cell of the grid."""

    template: str
    model: str
    k: int
    mode: str
    repeat: int = 0

    @property
    def key(self) -> str:
        return f"{self.template}|{self.model}|k={self.k}|{self.mode}|r{self.repeat}"

    def to_dict(self) -> dict:
        return asdict(self)


def plan(suite: Suite) -> list[Config]:
    """The cells of a suite, settings-major (so each retrieval is shared)."""
    if suite.retrieval_only:
        return [Config("-", "-", k, mode) for k in suite.retrieval.k for mode in suite.retrieval.mode]
    return [Config(t, m, k, mode, r) for k in suite.retrieval.k for mode in suite.retrieval.mode
            for m in suite.models for t in suite.templates for r in range(suite.repeats)]


def load_items(suite: Suite) -> list[tuple[str, Row]]:
    """(item id, row) for every selected row; ids are prefixed by the dataset's name."""
    from assistant.evaluation.runfolder import dataset_names

    items, names = [], dataset_names(suite.datasets)
    for path in suite.datasets:
        rows = select(with_ids(load_dataset(path), "row"), suite.filter, None)
        items.extend((f"{names[str(path)]}/{r.id}", r) for r in rows)
    if suite.limit:
        items = items[: suite.limit]
    if not items:
        raise InputError("no dataset rows to evaluate (check --filter and --limit)")
    return items


def read_results(path: Path) -> list[dict]:
    """The rows written so far, after cutting a last line a kill left unfinished (see
    assistant.evaluation.runfolder: viewers use its read-only `read_results`)."""
    from assistant.evaluation import runfolder

    runfolder.repair_tail(path)
    return runfolder.read_results(path)


class Runner:
    """Runs a suite into a run folder."""

    def __init__(self, suite: Suite, settings: Settings, out: Path,
                 progress: Callable[[int, int], None] | None = None, use_cache: bool = True,
                 batch_size: int = BATCH, models: dict | None = None):
        self.suite, self.settings, self.out = suite, settings, Path(out)
        self.batch_size = batch_size
        self.progress = progress
        self.cache = GenerationCache(settings.cache_dir / "eval-cache.sqlite") if use_cache else None
        self._assistants: dict[tuple, object] = {}
        self.models = dict(models or {})  # name -> chat model, used instead of loading one
        self.stats = {"generated": 0, "cached": 0, "written": 0}

    def check(self) -> None:
        """Every template, model and judge prompt the suite names can be used, before anything
        is written: a typo is one error, not a run of error rows (CourselabError)."""
        if self.suite.retrieval_only:
            return
        from assistant.prompts import find_template

        for name in self.suite.templates:
            find_template(name, self.settings.prompts_dir)
        names, judge = list(self.suite.models), self.suite.metric("judge")
        if judge and judge.args.get("model"):
            names.append(judge.args["model"])
        for name in names:
            self._model(name)  # resolves the name; weights load on the first answer
        self._judge()

    def run(self) -> list[dict]:
        items = load_items(self.suite)
        self._check_folder(items)
        path = self.out / RESULTS
        done = {(r["item_id"], r["config"]) for r in read_results(path)}
        cells = plan(self.suite)
        total = len(items) * len(cells)
        if self.progress:
            self.progress(len(done), total)
        index = self._index()
        self._embedder = index.embedder
        self._judge_fn = self._judge()
        for (k, mode), group in _by_setting(cells):
            todo = {c: [(i, r) for i, r in items if (i, c.key) not in done] for c in group}
            if not any(todo.values()):
                continue
            retriever = _retriever(index, k, mode)
            shared = self._retrieve(retriever, [x for pending in todo.values() for x in pending], k)
            for config, pending in todo.items():
                for start in range(0, len(pending), self.batch_size):
                    rows = self._cell(config, pending[start:start + self.batch_size], shared,
                                      retriever)
                    _append(path, rows)
                    self.stats["written"] += len(rows)
                    done.update((r["item_id"], r["config"]) for r in rows)
                    if self.progress:
                        self.progress(len(done), total)
        return read_results(path)

    # --- set-up --------------------------------------------------------------------------
    def _check_folder(self, items: list) -> None:
        """A run folder holds one suite: resuming with another one would mix results."""
        self.out.mkdir(parents=True, exist_ok=True)
        # gates and wording may change between reruns; what produced the rows may not
        suite = self.suite.model_dump(mode="json", exclude={"fail_under", "description"})
        config = {"suite": suite, "items": [i for i, _ in items]}
        path = self.out / "config.json"
        if path.exists():
            if json.loads(path.read_text()) != config:
                raise InputError(f"{self.out} holds a run of a different suite or dataset; "
                                 "choose a new --out folder")
            return
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(config, indent=2))
        os.replace(tmp, path)

    def _index(self):
        from assistant.chain.factory import open_retriever

        return open_retriever(self.settings).index

    def _model(self, name: str):
        from assistant.chain.factory import load_model

        settings = self.settings
        if self.suite.precision != "auto":  # the suite's precision wins over the default
            settings = settings.model_copy(update={"precision": self.suite.precision})
        return self.models.get(name) or load_model(settings, name)

    def _retrieve(self, retriever, pending: list, k: int) -> dict:
        """One retrieval per item for this setting, shared by every template and model."""
        from assistant.chain import retrieve

        shared = {}
        for item_id, row in pending:
            if item_id not in shared:
                try:
                    shared[item_id] = retrieve(retriever, row.user_input, k, self.settings.min_score)
                except CourselabError as e:
                    shared[item_id] = e
        return shared

    # --- one batch of one cell -----------------------------------------------------------
    def _cell(self, config: Config, batch: list, shared: dict, retriever) -> list[dict]:
        if config.template == "-":
            return [self._row(config, i, r, shared[i]) for i, r in batch]
        try:
            assistant = self._assistant(config, retriever)
        except CourselabError as e:
            return [self._row(config, i, r, shared[i], error=str(e)) for i, r in batch]
        ready = [i for i, _ in batch if not isinstance(shared[i], Exception)]
        prepared = {i: assistant.fitted(shared[i]) for i in ready}
        answers = assistant.answer_prepared([prepared[i] for i in ready],
                                            seed=self.suite.seed + config.repeat, cache=self.cache)
        by_id = dict(zip(ready, answers))
        for a in answers:
            if a.cached:
                self.stats["cached"] += 1
            elif a.prompt and not a.error:
                self.stats["generated"] += 1
        return [self._row(config, i, r, shared[i], prepared.get(i), by_id.get(i)) for i, r in batch]

    def _assistant(self, config: Config, retriever):
        """One assistant per template, model and retrieval setting (not per batch)."""
        from assistant.chain import CourseAssistant
        from assistant.prompts import find_template

        key = (config.template, config.model, config.k, config.mode)
        if key not in self._assistants:
            template = find_template(config.template, self.settings.prompts_dir)
            self._assistants[key] = CourseAssistant(retriever, self._model(config.model), template,
                                                    k=config.k, min_score=self.settings.min_score)
        return self._assistants[key]

    def _row(self, config: Config, item_id: str, row: Row, shared, prepared=None, answer=None,
             error: str | None = None) -> dict:
        if isinstance(shared, Exception):
            error = error or str(shared)
            shared = None
        error = error or (answer.error if answer else None)
        hits = [{"rank": h.rank, "score": h.score, "section": h.section, "chunk_id": h.chunk_id,
                 "text": h.text} for h in (shared.hits if shared else [])]
        card = answer.to_row() if answer is not None and not error else {}
        seen_passages = prepared.passages if card and not card["abstained"] else []
        contexts = row.reference_contexts
        relevant = (lambda texts: any(contains_context(t, contexts) for t in texts)) if contexts else None
        sample = Sample(row, card.get("answer", ""), card.get("abstained", False),
                        prepared.inputs["context"] if seen_passages else "", hits,
                        card.get("latency_s") or 0.0, embed=self._embedder.embed_documents,
                        judge=self._judge_fn, lead=card.get("lead", ""),
                        support=(card.get("support") or {}).get("verdict"))
        metrics = {} if error else self._metrics(config, sample)
        return {"item_id": item_id, "config": config.key, **config.to_dict(),
                "question": row.user_input, "reference": row.reference, "metadata": row.metadata,
                "answer": "", "abstained": False, "prompt": "", "latency_s": None, "tokens": None,
                "cached": False, **card,
                "hits": [{k: v for k, v in h.items() if k != "text"} for h in hits],
                "seen": [p.hit.chunk_id for p in seen_passages],
                "relevant_retrieved": relevant([h["text"] for h in hits]) if relevant else None,
                "relevant_seen": (relevant([p.hit.text for p in seen_passages])
                                  if relevant and not error else None),
                "metrics": metrics, "error": error}

    def _metrics(self, config: Config, sample: Sample) -> dict:
        out = {}
        for spec in self.suite.metrics:
            metric = METRICS[spec.name]
            if config.template == "-" and not metric.retrieval:
                continue
            try:
                out[spec.name] = metric.evaluate(sample, spec.args, spec.threshold)
            except CourselabError as e:  # a metric (or its judge model) failed: an error
                out[spec.name] = {"score": None, "pass": None, "reason": str(e), "error": True}
        return out

    def _judge(self):
        spec = self.suite.metric("judge")
        if spec is None:
            return None
        model, prompt_file = spec.args.get("model"), spec.args.get("prompt")
        if not (model and prompt_file):
            return None
        prompt = _judge_prompt(Path(prompt_file))

        def ask(sample: Sample) -> str:
            text = prompt.format(question=sample.row.user_input, answer=sample.answer,
                                 reference=sample.row.reference or "(none)")
            return str(self._model(model).invoke(text).content)

        return ask


def _judge_prompt(path: Path) -> str:
    """The judge's prompt file: UTF-8, at most 1 MB, only plain {question}, {answer} and
    {reference} fields (a format spec like {answer:>999999999} would build a gigabyte)."""
    from assistant.prompts.templates import MAX_TEMPLATE_BYTES, fields_of

    text = read_text(path, InputError, MAX_TEMPLATE_BYTES)
    try:
        unknown = fields_of(text) - JUDGE_FIELDS
    except ValueError as e:
        raise InputError(f"judge prompt {path}: {e}") from None
    if unknown:
        raise InputError(f"judge prompt {path}: unknown field(s) {', '.join(sorted(unknown))}; "
                         f"it may use {', '.join(sorted(JUDGE_FIELDS))}")
    return text


def _by_setting(cells: list[Config]):
    from itertools import groupby

    return groupby(cells, key=lambda c: (c.k, c.mode))


def _retriever(index, k: int, mode: str):
    from assistant.retrieval import CourseRetriever

    return CourseRetriever(index=index, k=k, mode=mode)


def _append(path: Path, rows: list[dict]) -> None:
    """One write per batch, flushed to disk before the run moves on."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
