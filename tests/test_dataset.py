"""The course question set is valid and covers the course; malformed datasets are named."""

from __future__ import annotations

import pytest
from conftest import ROOT

from assistant.corpus import load_corpus
from assistant.datasets import read_rows
from assistant.errors import InputError
from assistant.text import contains_context, has_key_facts

DATASET = ROOT / "evals/datasets/course_qa.jsonl"


@pytest.fixture(scope="module")
def rows():
    return read_rows(DATASET)


def test_course_question_set_has_enough_questions(rows):
    assert sum(r.answerable for r in rows) >= 40
    assert sum(not r.answerable for r in rows) >= 5
    assert "Who won the 2018 FIFA World Cup?" in {r.user_input for r in rows}


def test_reference_passages_are_exact_course_text(rows):
    text = (ROOT / "corpus/intro_to_transformers_llms_genai.md").read_text()
    for row in rows:
        assert all(c in text for c in row.reference_contexts), row.id
        assert bool(row.reference_contexts) == row.answerable, row.id
        assert bool(row.key_facts) == row.answerable, row.id
        if row.answerable:
            assert has_key_facts(row.reference, row.key_facts), row.id


def test_every_course_section_has_a_question(rows):
    chunks = load_corpus(ROOT / "corpus")
    covered = {c.section.split(" > ")[0] for c in chunks
               for r in rows if contains_context(c.text, r.reference_contexts)}
    assert covered == {c.section.split(" > ")[0] for c in chunks}


@pytest.mark.parametrize("line, error", [
    ('{"user_input": "ok"', "invalid JSON"),
    ('["a list"]', "not a JSON object"),
    ('{"user_input": ""}', "user_input"),
    ('{"user_input": "q", "colour": 1}', "colour"),
    ('{"id": 3, "user_input": "q"}', "id"),
    # the keys the metrics read are typed: 5 is not iterable, "attention" is no list of facts
    ('{"user_input": "q", "metadata": {"key_facts": 5}}', "key_facts must be a list"),
    ('{"user_input": "q", "metadata": {"key_facts": "attention"}}', "key_facts must be a list"),
    ('{"user_input": "q", "metadata": {"key_facts": [1, {"a": 2}]}}', "key_facts must be a list"),
    ('{"user_input": "q", "metadata": {"needs_reference": "yes"}}', "needs_reference"),
])
def test_malformed_rows_are_named_by_line(tmp_path, line, error):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "user_input": "fine"}\n' + line + "\n")
    with pytest.raises(InputError, match=rf"d.jsonl:2: .*{error}"):
        read_rows(path)


@pytest.mark.parametrize("name, data, error", [
    ("d.jsonl", b'{"user_input": "q"}\n\xff\xfe', "not UTF-8 text"),
    ("d.csv", b"id,user_input\na,\xff\n", "not UTF-8 text"),
])
def test_a_dataset_that_is_not_text_is_one_error(tmp_path, name, data, error):
    from assistant.datasets import load_dataset

    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError, match=error):
        load_dataset(tmp_path / name)


def test_duplicate_ids_are_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "user_input": "x"}\n{"id": "a", "user_input": "y"}\n')
    with pytest.raises(InputError, match="duplicate ids"):
        read_rows(path)

