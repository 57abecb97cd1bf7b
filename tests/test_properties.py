"""Property-based tests of the surfaces that take text from outside: questions (through the
API handler), dataset files and suite files. The property: a clear one-line error or a correct
result, never an unhandled exception, and every call returns within a bound."""

from __future__ import annotations

import json
import time

import gradio as gr
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.errors import CourselabError

QUESTIONS = st.one_of(
    st.text(max_size=1200),
    st.lists(st.sampled_from(["it", "and", "what about", "BERT", "(MLM)", "[x](y)", "![](",
                              "<img ", "{context}", "?", " ", "\n", "ÿ", "\x00"]),
             max_size=200).map(" ".join),
)
ARGS = st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                 st.text(max_size=30), st.lists(st.text(max_size=20), max_size=5))


@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    import shutil

    from conftest import DATA

    from assistant.config import Settings
    from assistant.service import Service
    from assistant.ui.chat import ChatHandlers

    root = tmp_path_factory.mktemp("props")
    shutil.copytree(DATA / "corpus", root / "corpus")
    service = Service(Settings(corpus_dir=root / "corpus", index_dir=root / "index",
                               cache_dir=root / "cache", embedder="fake-hash", model="fake"))
    service.load()
    assert service.ready, service.error
    return ChatHandlers(service)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(question=QUESTIONS,
       history=st.one_of(st.none(), st.lists(QUESTIONS, max_size=3), ARGS),
       model=st.one_of(st.sampled_from(["", "fake"]), ARGS),
       template=st.one_of(st.sampled_from(["", "default", "citing"]), ARGS),
       k=st.one_of(st.integers(1, 20), ARGS))
def test_the_ask_api_answers_or_refuses_clearly(handlers, question, history, model, template, k):
    start = time.perf_counter()
    try:
        turn = handlers.ask(question, history, model, template, k)
    except gr.Error as e:
        assert str(e.message).strip() and "\n" not in str(e.message) and "Traceback" not in str(e)
    else:
        assert isinstance(turn["answer"], str) and turn["query"]
    assert time.perf_counter() - start < 5


def _jsonl_line(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


ROW = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=8), st.integers(), st.none()),
    "user_input": st.one_of(st.text(max_size=40), st.integers(), st.none()),
    "reference": st.one_of(st.text(max_size=20), st.none(), st.lists(st.text())),
    "reference_contexts": st.one_of(st.lists(st.text(max_size=10), max_size=3), st.text()),
    "metadata": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), st.text()),
    "extra": st.text(max_size=5)})
LINES = st.lists(st.one_of(ROW, st.text(max_size=30), st.integers(), st.lists(st.integers())),
                 max_size=8)


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES, suffix=st.sampled_from([".jsonl", ".csv"]))
def test_a_dataset_file_loads_or_names_its_problem(tmp_path, lines, suffix):
    from assistant.datasets import load_dataset

    path = tmp_path / f"d{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(_jsonl_line(v) for v in lines), encoding="utf-8")
    else:
        path.write_text("id,user_input,reference\n" + "\n".join(
            ",".join(json.dumps(v) for v in (line.values() if isinstance(line, dict) else [line]))
            for line in lines), encoding="utf-8")
    try:
        rows = load_dataset(path)
    except CourselabError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:
        assert all(r.user_input for r in rows)


SUITE = st.fixed_dictionaries({}, optional={
    "description": st.one_of(st.text(max_size=10), st.integers()),
    "datasets": st.one_of(st.lists(st.sampled_from(["tiny_qa.jsonl", "../x.jsonl", "/etc/passwd",
                                                     ""]), max_size=2), st.text(max_size=5)),
    "templates": st.one_of(st.lists(st.sampled_from(["default", "nope", "../x", ""]), max_size=3),
                           st.integers()),
    "models": st.lists(st.sampled_from(["fake", "openai:x@http://h/v1", "nope"]), max_size=2),
    "retrieval": st.one_of(st.dictionaries(st.sampled_from(["k", "mode", "z"]),
                                           st.lists(st.integers(-5, 100), max_size=3)),
                           st.text(max_size=3)),
    "metrics": st.lists(st.one_of(st.sampled_from(["key_facts", "nope"]),
                                  st.fixed_dictionaries({"name": st.text(max_size=8)})),
                        max_size=3),
    "repeats": st.integers(-3, 10**9), "seed": st.one_of(st.integers(), st.text(max_size=3)),
    "limit": st.integers(-3, 10**9), "unknown": st.text(max_size=3)})


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(SUITE, st.text(max_size=50), st.lists(st.integers(), max_size=3)))
def test_a_suite_file_loads_or_names_its_problem(tmp_path, data):
    import shutil

    from conftest import DATA

    from assistant.evaluation.suite import load_suite

    shutil.copy(DATA / "tiny_qa.jsonl", tmp_path / "tiny_qa.jsonl")
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        suite = load_suite(path)
    except CourselabError as e:
        assert "\n" not in str(e)
    else:
        assert suite.datasets and suite.models
