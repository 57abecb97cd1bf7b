"""Prompt templates: the shipped one loads; bad files each give their error."""

from __future__ import annotations

import pytest

from assistant.errors import TemplateError
from assistant.prompts import find_template, load_template

GOOD = "name: t\nkind: zero-shot\ndescription: d\ntemplate: 'Q: {question} C: {context}'\n" \
       "variables: [question, context]\n"

BAD = [
    ("name: t\nkind: [zero-shot\n", "invalid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    (GOOD + "colour: red\n", "colour: Extra inputs are not permitted"),
    (GOOD.replace("kind: zero-shot", "kind: magic"), "kind"),
    (GOOD.replace("'Q: {question} C: {context}'", "''"), "template"),
    (GOOD.replace("{question}", "{question.__class__}"), "not a plain name"),
    (GOOD.replace("{question}", "{question[0]}"), "not a plain name"),
    (GOOD.replace("{question}", "{question!r}"), "conversion"),
    (GOOD.replace("{context}", "{context} {extra}"), "used but not declared: extra"),
    (GOOD.replace("[question, context]", "[question, context, unused]"),
     "declared but not used: unused"),
    (GOOD + "template_format: jinja2\n", "template_format"),
    (GOOD.replace("'Q: {question} C: {context}'", "'{% for x in y %}{{x}}{% endfor %}'"),
     "template"),
]


def test_shipped_default_template_renders(tmp_path):
    from assistant.config import PROJECT_ROOT

    template = find_template("default", PROJECT_ROOT / "prompts")
    messages = template.chat_prompt().invoke({"context": "CTX", "question": "Q?"}).to_messages()
    assert "CTX" in messages[-1].content and "Q?" in messages[-1].content


@pytest.mark.parametrize("text, error", BAD)
def test_bad_template_files(tmp_path, text, error):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert str(path) in str(info.value) and error in str(info.value)


def test_good_template_file_loads(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert load_template(path).variables == ["question", "context"]


def test_unknown_template_lists_the_choices(tmp_path):
    (tmp_path / "one.yaml").write_text(GOOD)
    with pytest.raises(TemplateError, match="choose one of: one"):
        find_template("two", tmp_path)


def test_few_shot_examples_become_demonstration_turns(tmp_path):
    path = tmp_path / "fs.yaml"
    path.write_text(GOOD.replace("zero-shot", "few-shot") + "examples:\n"
                    "  - {question: 'Q1', context: 'C1 {braces}', answer: 'A1'}\n")
    messages = load_template(path).chat_prompt().invoke(
        {"question": "Q2", "context": "C2"}).to_messages()
    assert [m.type for m in messages] == ["human", "ai", "human"]
    assert "C1 {braces}" in messages[0].content and messages[1].content == "A1"


@pytest.mark.parametrize("extra, error", [
    ("examples:\n  - {question: 'Q1', answer: 'A1'}\n", "examples.1: needs exactly the keys"),
    ("", "a few-shot template needs examples or a selector pool"),
])
def test_bad_few_shot_templates(tmp_path, extra, error):
    path = tmp_path / "fs.yaml"
    path.write_text(GOOD.replace("zero-shot", "few-shot") + extra)
    with pytest.raises(TemplateError, match=error):
        load_template(path)
