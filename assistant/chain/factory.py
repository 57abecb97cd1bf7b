"""Wiring: settings -> embedder, index, retriever, model, template, assistant.

The index is built on first use when none exists, so `ask` works on a fresh machine, and
synced first when it holds another corpus (or one changed since), so no command answers
from the wrong course.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.errors import IndexStoreError
from assistant.retrieval import CourseRetriever
from assistant.retrieval.embeddings import get_embedder
from assistant.retrieval.index import CourseIndex, SyncReport, corpus_stamp


def open_index(settings: Settings) -> CourseIndex:
    """The index in a local folder, or in a Chroma server when `chroma_url` is set."""
    embedder = get_embedder(settings.embedder, settings.cache_dir)
    url = settings.chroma_url
    return CourseIndex(embedder, path=None if url else settings.index_dir, url=url,
                       collection=settings.collection)


def sync_index(index: CourseIndex, settings: Settings, rebuild: bool = False,
               progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Bring the index in line with the corpus folder, and record which corpus it now holds."""
    stamp = corpus_stamp(settings.corpus_dir)  # subtle: before reading, so a later edit re-syncs
    return index.sync(load_corpus(settings.corpus_dir), rebuild=rebuild, progress=progress,
                      stamp=stamp)


def open_retriever(settings: Settings, notify: Callable[[str], None] | None = None
                   ) -> CourseRetriever:
    """A retriever over the index of the corpus asked for, synced first if it holds another.

    A missing corpus folder is a CorpusError: never an answer from whatever was indexed.
    """
    index = open_index(settings)
    stamp = corpus_stamp(settings.corpus_dir)
    if not index.holds(stamp):
        _check_shared(index, stamp)
        if notify:
            notify(_why_sync(index, settings))
        report = sync_index(index, settings)
        if notify:
            notify(report.summary())
    return CourseRetriever(index=index, k=settings.k, mode=settings.retrieval_mode)


def _check_shared(index: CourseIndex, stamp: dict[str, str]) -> None:
    """A Chroma server's index of another course is not replaced behind its users' backs."""
    held = index.corpus() if index.url else ""
    if held and held != stamp["corpus"]:
        raise IndexStoreError(
            f"the index at {index.url} holds another course ({held}), not {stamp['corpus']}; "
            "replace it on purpose with `courselab --chroma-url URL --corpus DIR index`")


def _why_sync(index: CourseIndex, settings: Settings) -> str:
    if index.count() == 0:
        return f"no index at {index.where}: building it from {settings.corpus_dir}"
    if not index.is_complete():
        return "the index is incomplete (an indexing run was interrupted): completing it"
    held = index.corpus()
    if held and held != str(settings.corpus_dir.resolve()):
        return f"the index at {index.where} holds {held}: syncing it with {settings.corpus_dir}"
    return f"{settings.corpus_dir} changed since it was indexed: syncing the index"


# Measured with evals/answer_quality.py on SmolLM2-135M: short answers, cut at the first
# blank line, and no n-gram repeated within the answer (greedy decoding loops otherwise).
ANSWER_OPTIONS = {"max_new_tokens": 64, "stop": ["\n\n", "Question:"], "no_repeat_ngram_size": 4}


log = logging.getLogger("courselab")
MAX_LOADED_MODELS = 4  # models kept in memory; the least recently used unpinned one goes first
_models: OrderedDict[tuple, object] = OrderedDict()
_pinned: set[str] = set()  # names never unloaded (an app's default model)
_models_lock = threading.Lock()


def load_model(settings: Settings, name: str | None = None, options: dict | None = None,
               pin: bool = False):
    """A chat model with the answer options, on the settings' device and concurrency.

    One cache for the process: every front end asking for the same model with the same
    options gets the same object, so its weights load once. Past MAX_LOADED_MODELS the least
    recently used goes (freed once no answer in progress holds it), never a pinned name.
    """
    from assistant.models import model_for

    name = name or settings.model
    merged = {**ANSWER_OPTIONS, **(options or {})}
    key = (name, settings.device, settings.precision, settings.concurrency, settings.batch_window_ms,
           settings.max_batch, settings.max_queue, json.dumps(merged, sort_keys=True))
    with _models_lock:
        if pin:
            _pinned.add(name)
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        model = model_for(settings, name, merged)
        if hasattr(model, "concurrency"):
            model.concurrency = settings.concurrency
        _models[key] = model
        while len(_models) > MAX_LOADED_MODELS:
            oldest = next((k for k in _models if k[0] not in _pinned), None)
            if oldest is None:
                break
            log.info("courselab: unloading %s (at most %d models)", oldest[0], MAX_LOADED_MODELS)
            del _models[oldest]
        return model


def clear_models() -> None:
    """Forget every loaded model and pin (tests; freeing memory)."""
    with _models_lock:
        _models.clear()
        _pinned.clear()


def build_assistant(settings: Settings, model_name: str | None = None,
                    template_name: str = "default", notify=None, options: dict | None = None):
    """A ready CourseAssistant (the model's weights load on first generation)."""
    from assistant.chain import CourseAssistant
    from assistant.prompts import find_template

    template = find_template(template_name, settings.prompts_dir)
    model = load_model(settings, model_name, options)
    retriever = open_retriever(settings, notify)
    return CourseAssistant(retriever, model, template, k=settings.k, min_score=settings.min_score)
