"""Template files from outside: no format specs, no ReDoS answer patterns, only the chain's
variables, library templates never replaced from the lab, backups, no link following."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.errors import TemplateError
from assistant.prompts import load_template, parse_template

BASE = {"name": "mine", "kind": "zero-shot", "description": "d",
        "template": "Notes: {context}\nQuestion: {question}", "variables": ["context", "question"]}


def text_of(**changes) -> str:
    return yaml.safe_dump({**BASE, **changes})


@pytest.mark.parametrize("changes, error", [
    ({"template": "{context}\n{question:>999999999}"}, "format spec"),
    ({"template": "{context:d} {question}"}, "format spec"),
    ({"template": "{context!r} {question}"}, "format spec"),
    ({"kind": "chain-of-thought", "answer_pattern": r"(a)\1"}, "backreferences"),
    ({"kind": "chain-of-thought", "answer_pattern": r"(?=Answer)(.*)"}, "lookarounds"),
    ({"kind": "chain-of-thought", "answer_pattern": "(" + "a" * 300 + ")"}, "longer than"),
    ({"template": "{context} {question} {secret}", "variables": ["context", "question", "secret"]},
     "only context and question"),
    ({"template": "{context}", "variables": ["context"]}, "question is needed"),
])
def test_dangerous_templates_are_refused_at_load(changes, error):
    with pytest.raises(TemplateError, match=error):
        parse_template(text_of(**changes), "t.yaml", ROOT / "prompts")


@pytest.mark.parametrize("pattern", [
    "^(a+)+$", r"^((\w+\s?)*)$", "^(a|aa)*(x)$",  # nested or alternating repeats
    "(.*)(.*)(.*)(.*)(.*)Z", r"(\w*\w*\w*\w*)!", "(x+x+x+x+)y", "(.*?)(.*?)(.*?)(.*?)Z",
    r"^(.*)\s*.*\s*.*\s*.*Z",  # repeats in a row: minutes per reply with Python's re
])
def test_any_answer_pattern_runs_in_linear_time_on_a_hostile_reply(pattern):
    cot = parse_template(text_of(kind="chain-of-thought", answer_pattern=pattern), "t.yaml",
                         ROOT / "prompts")
    for reply in ("a" * 4000, "x" * 4000, "word " * 800, ("ab\n" * 1400)):
        start = time.perf_counter()
        assert cot.final_answer(reply) in reply  # its group, or the whole reply
        assert time.perf_counter() - start < 0.5, (pattern, reply[:8])


@pytest.mark.parametrize("pool", [False, True])
def test_a_template_or_pool_that_is_not_utf8_is_one_error(tmp_path, pool):
    garbage = b"\x00\xff\xfe" + bytes(range(256)) * 16
    if pool:
        (tmp_path / "pool.jsonl").write_bytes(garbage)
        (tmp_path / "t.yaml").write_text(text_of(
            kind="few-shot", template="{context}\n{question}",
            selector={"by": "fixed", "pool": "pool.jsonl"}))
    else:
        (tmp_path / "t.yaml").write_bytes(garbage)
    with pytest.raises(TemplateError, match=r"(t.yaml|pool.jsonl): not UTF-8 text"):
        load_template(tmp_path / "t.yaml")


def test_template_errors_say_where_and_how_to_fix_them():
    with pytest.raises(TemplateError, match=r"invalid YAML \(line 2, column 1: expected"):
        parse_template("name: [unclosed\n", "t.yaml", ROOT / "prompts")
    with pytest.raises(TemplateError, match=r"doubled braces \{\{ \}\} are literal text"):
        parse_template(text_of(template="Notes: {context}\nQuestion: {{ question }}"), "t.yaml",
                       ROOT / "prompts")


def test_the_shipped_templates_still_load_and_answer_patterns_are_bounded():
    for path in (ROOT / "prompts").glob("*.yaml"):
        load_template(path)
    cot = load_template(ROOT / "prompts" / "chain-of-thought.yaml")
    start = time.perf_counter()
    cot.final_answer("x" * 500_000 + "\nAnswer: 42")
    assert time.perf_counter() - start < 0.5
    assert cot.final_answer("thinking...\nAnswer: 42") == "42"


@pytest.fixture
def lab(settings, tmp_path):
    from assistant.service import Service

    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    return Service(settings.model_copy(update={"prompts_dir": prompts})), prompts


def test_the_lab_never_replaces_library_templates(lab):
    service, prompts = lab
    before = (prompts / "default.yaml").read_text()
    for name in ("default", "zero-shot"):
        with pytest.raises(TemplateError, match="library template"):
            service.save_template(text_of(name=name), overwrite=True)
    assert (prompts / "default.yaml").read_text() == before


def test_a_lab_template_is_replaced_only_when_confirmed_and_backed_up(lab):
    service, prompts = lab
    service.save_template(text_of(description="first"))
    with pytest.raises(TemplateError, match="already exists"):
        service.save_template(text_of(description="second"))
    service.save_template(text_of(description="second"), overwrite=True)
    assert "second" in (prompts / "mine.yaml").read_text()
    backups = list((prompts / ".backups").glob("mine.*.yaml"))
    assert len(backups) == 1 and "first" in backups[0].read_text()


def test_saving_never_writes_through_a_link(lab, tmp_path):
    service, prompts = lab
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    os.symlink(victim, prompts / ".mine.yaml.part")  # the old fixed temp name
    service.save_template(text_of())
    assert victim.read_text() == "untouched" and not (prompts / "mine.yaml").is_symlink()


def test_an_example_pool_that_is_a_link_is_refused(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"context": "c", "question": "q", "answer": "a"}\n')
    folder = tmp_path / "prompts"
    (folder / "examples").mkdir(parents=True)
    os.symlink(outside, folder / "examples" / "pool.jsonl")
    text = text_of(kind="few-shot", selector={"by": "fixed", "pool": "examples/pool.jsonl"})
    with pytest.raises(TemplateError, match="not a link"):
        parse_template(text, "t.yaml", folder)


FIELD_VALUES = st.one_of(st.text(max_size=60), st.integers(), st.none(), st.booleans(),
                         st.lists(st.text(max_size=10), max_size=4),
                         st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
KEYS = st.sampled_from(["name", "kind", "description", "system", "template", "variables",
                        "examples", "selector", "answer_pattern", "generation", "folder", "x"])


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(KEYS, FIELD_VALUES, max_size=4),
       braces=st.text(alphabet="{}:!.[]0adq>", max_size=30))
def test_any_template_file_loads_or_fails_with_one_clear_error(tmp_path_factory, changes, braces):
    data = {**BASE, **changes}
    if isinstance(data.get("template"), str):
        data["template"] += braces
    start = time.perf_counter()
    try:
        template = parse_template(yaml.safe_dump(data), "t.yaml", ROOT / "prompts")
    except TemplateError as e:
        assert str(e).startswith("t.yaml")
    else:
        template.chat_prompt().format_messages(context="c", question="q")
    assert time.perf_counter() - start < 1.5


@settings(max_examples=200, deadline=2000)
@given(st.text(max_size=400))
def test_any_yaml_text_loads_or_fails_with_one_clear_error(text):
    try:
        parse_template(text, "t.yaml", ROOT / "prompts")
    except TemplateError as e:
        assert str(e).startswith("t.yaml")
