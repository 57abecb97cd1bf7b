"""The shared Service refuses what a visitor must not do: models the operator did not allow,
unbounded k, long histories; uploads never block answers; added files can be removed."""

from __future__ import annotations

import shutil
import threading
import time
import types

import gradio as gr
import pytest

from assistant.errors import InputError, TemplateError
from assistant.service import MAX_K, Service


@pytest.fixture
def service(settings):
    s = Service(settings)  # the fake model and the hash embedder
    s.load()
    assert s.ready, s.error
    return s


@pytest.mark.parametrize("name", [
    "openai:x@http://127.0.0.1:9977/v1",  # would send the operator's key to any address
    "hf:someone/anything",  # would download and load anything
    "hf:/etc",
    "smollm2-360m-instruct-typo",
])
def test_models_the_operator_did_not_allow_are_refused(service, name):
    import assistant.chain.factory as factory

    with pytest.raises(InputError, match="not offered by this app"):
        service.model(name)
    assert name not in {key[0] for key in factory._models}


def test_fake_is_only_offered_when_configured(settings):
    operator = Service(settings.model_copy(update={"model": "smollm2-135m-instruct"}))
    assert "fake" not in operator.allowed_models()
    with pytest.raises(InputError):
        operator.check_model("fake")
    assert [name for _, name in operator.model_choices()][0] == "smollm2-135m-instruct"


def test_the_model_cache_is_bounded_and_keeps_the_default(settings, monkeypatch):
    """One cache for the process (chain/factory.py): a Service adds none of its own, so
    unloading a model frees it, and the app's default model is never the one unloaded."""
    import assistant.chain.factory as factory
    import assistant.models as models

    monkeypatch.setattr(factory, "_models", type(factory._models)())
    monkeypatch.setattr(factory, "_pinned", set())
    monkeypatch.setattr(models, "get_model", lambda name, *a, **k: object())
    names = [f"m{i}" for i in range(factory.MAX_LOADED_MODELS + 2)]
    s = Service(settings, allowed_models=names)
    default = s.model("fake")
    first = s.model(names[0])
    for name in names:
        s.model(name)
    assert len(factory._models) == factory.MAX_LOADED_MODELS
    assert s.model("fake") is default  # pinned: the same object, never reloaded
    assert s.model(names[0]) is not first  # unloaded meanwhile: a fresh one


def test_a_model_sized_for_another_batcher_is_another_model(settings, monkeypatch):
    """COURSELAB_MAX_BATCH and the other batcher settings are part of the model cache's key:
    a model built for a batch of 1 is never handed to a caller that asked for 64."""
    import assistant.chain.factory as factory
    import assistant.models as models

    monkeypatch.setattr(factory, "_models", type(factory._models)())
    monkeypatch.setattr(models, "get_model", lambda name, *a, **k: types.SimpleNamespace(
        max_batch=64, batch_window_ms=20, max_queue=256))
    one = factory.load_model(settings.model_copy(update={"max_batch": 1}), "m")
    assert one.max_batch == 1 and factory.load_model(settings, "m").max_batch == 64
    assert factory.load_model(settings.model_copy(update={"max_batch": 1}), "m") is one
    slow = factory.load_model(settings.model_copy(update={"batch_window_ms": 100, "max_queue": 8}), "m")
    assert (slow.batch_window_ms, slow.max_queue) == (100, 8)


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 100_000, 2.5, "many", None, [4]])
def test_k_is_bounded(service, k):
    with pytest.raises(InputError, match="k must be"):
        service.check_k(k)


def test_the_ask_api_checks_every_argument(service):
    from assistant.ui.chat import ChatHandlers

    h = ChatHandlers(service)
    for args, message in [
        (("What is attention?", [], "openai:x@http://127.0.0.1:9/v1"), "not offered"),
        (("What is attention?", [], "", "", 100_000), "k must be"),
        (("What is attention?", ["q"] * 1000), "history must be"),
        (("What is attention?", "not a list"), "history must be"),
        (("What is attention?", [], "", "../../etc/passwd"), "unknown template"),
        ((["not", "text"],), "the question is empty"),
    ]:
        with pytest.raises(gr.Error, match=message):
            h.ask(*args)
    assert h.ask("What is attention?", [], "fake", "", 2)["sources"]


def test_a_long_previous_question_does_not_make_a_follow_up_too_long(service):
    from assistant.chain.followup import rewrite
    from assistant.config import MAX_QUESTION_CHARS

    long_before = "What is " + " ".join(f"Term{i}" for i in range(130)) + "?"
    assert len(long_before) <= MAX_QUESTION_CHARS
    query = rewrite("and what does it do?", [long_before])
    assert len(query) <= MAX_QUESTION_CHARS
    turn = service.answer("and what does it do?", [long_before])
    assert turn.to_dict()["answer"]


def test_an_upload_being_indexed_does_not_block_answers(service, monkeypatch):
    import assistant.chain.factory as factory

    release, started = threading.Event(), threading.Event()
    real_sync = factory.sync_index

    def slow_sync(*args, **kwargs):
        started.set()
        release.wait(10)
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(factory, "sync_index", slow_sync)
    upload = threading.Thread(target=service.add_files,
                              args=([("extra.md", b"# Extra\n\nA new section on pruning.\n")],))
    upload.start()
    try:
        assert started.wait(10)
        begin = time.perf_counter()
        turn = service.answer("What is self-attention?", [])
        assert time.perf_counter() - begin < 5 and turn.to_dict()["answer"]
    finally:
        release.set()
        upload.join(20)


def test_the_corpus_has_a_total_size_limit(corpus_dir):
    from assistant.corpus.uploads import add_files

    with pytest.raises(InputError, match="the limit is"):
        add_files([("big.md", b"# Big\n\n" + b"word " * 2000)], corpus_dir, max_total=5_000)
    assert not (corpus_dir / "big.md").exists()


def test_an_added_file_can_be_removed_and_course_files_cannot(service, corpus_dir):
    service.add_files([("pruning.md", b"# Pruning\n\nPruning removes weights of a network.\n")])
    assert service.uploaded_files() == ["pruning.md"]
    assert any(h.source == "pruning.md" for h in service.search("pruning removes weights", 5))
    course = next(p.name for p in corpus_dir.iterdir() if p.suffix == ".md" and p.name != "pruning.md")
    for name in (course, "../x.md", "nope.md"):
        with pytest.raises(InputError, match="added from the app"):
            service.remove_file(name)
    assert "removed pruning.md" in service.remove_file("pruning.md")
    assert not (corpus_dir / "pruning.md").exists() and service.uploaded_files() == []
    assert all(h.source != "pruning.md" for h in service.search("pruning removes weights", 5))


def test_search_and_compare_bound_k_too(service):
    for call in (lambda: service.search("attention", 100_000),
                 lambda: service.compare("What is attention?", ["default"], ["fake"], 100_000)):
        with pytest.raises(InputError, match="k must be"):
            call()


def test_compare_answers_each_template_and_model_once_and_bounds_the_pairs(service, monkeypatch):
    from assistant import service as service_module

    compared = service.compare("What is attention?", ["default"] * 100 + ["zero-shot"],
                               ["fake"] * 50, 4)
    assert [(c.template, c.model) for c in compared.cells] == [("default", "fake"),
                                                               ("zero-shot", "fake")]
    monkeypatch.setattr(service_module, "MAX_COMPARE_CELLS", 1)
    with pytest.raises(InputError, match="at most 1 template x model pairs"):
        service.compare("What is attention?", ["default", "zero-shot"], ["fake"], 4)


def test_a_template_file_that_is_not_utf8_is_one_error_in_the_lab(settings, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(settings.prompts_dir, prompts)
    (prompts / "binary.yaml").write_bytes(b"name: x\n\xff\xfe\x00garbage")
    lab = Service(settings.model_copy(update={"prompts_dir": prompts}))
    with pytest.raises(TemplateError, match="binary.yaml: not UTF-8 text"):
        lab.template_text("binary")


def test_a_start_that_fails_in_any_way_is_never_ready(settings, monkeypatch):
    s = Service(settings)
    monkeypatch.setattr(s, "retriever", lambda: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    s.load()
    assert not s.ready and "disk on fire" in s.error and s.status() == "failed"


def test_an_upload_whose_indexing_fails_in_any_way_leaves_the_corpus_as_it_was(service, corpus_dir,
                                                                               monkeypatch):
    import assistant.chain.factory as factory

    before = sorted(p.name for p in corpus_dir.iterdir() if not p.name.startswith("."))
    real = factory.sync_index
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("chroma fell over")
        return real(*args, **kwargs)

    monkeypatch.setattr(factory, "sync_index", broken)
    with pytest.raises(RuntimeError):
        service.add_files([("notes.md", b"# Notes\n\nSome text about attention.")])
    assert sorted(p.name for p in corpus_dir.iterdir() if not p.name.startswith(".")) == before
    assert service.uploaded_files() == []
