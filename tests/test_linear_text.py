"""Text from outside (uploads, answers, questions) is processed in linear time, and upload
names and contents get a clear verdict: property-based tests with hypothesis."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.chain.compress import units
from assistant.chain.grounding import asked, claims
from assistant.chain.grounding.missing import (
    _BETWEEN,
    _CHOICE,
    _COUNTED,
    _DIFFER_Q,
    _DOES_Q,
    _PICK,
    _alternatives,
    _counts,
    _defined,
    _offered,
    _resolve_topic,
)
from assistant.corpus.chunks import sections, split_markdown
from assistant.corpus.uploads import check_upload, safe_name
from assistant.errors import InputError
from assistant.explain.catalog import _IMG_SRC
from assistant.text import find_abbreviations, plain_text

# inputs that made the old regexes backtrack quadratically (a 1 MB upload took hours)
# (sized so the old code takes 10-60 s each and these take milliseconds)
ADVERSARIAL = {
    "no whitespace": "x" * 40_000,
    "open brackets": "[" * 60_000,
    "links without end": "[a](" * 30_000,
    "images without end": "<img " * 30_000,
    "words then parens": "Ab " * 20_000 + "(",
    "capitals and spaces": ("AB " + " " * 50) * 2000,
    "contents lists": "".join(f"# H{i}\n- H{i}\n" for i in range(5000)),
    "table pipes and spaces": ("|" + " " * 50) * 2000 + "x",
    "a table row of empty cells": "|" + " |" * 40_000,
    "abbreviations": "a i.e. B e.g. [C etc. " * 5000,
    "a yes/no question that never ends": "? is it " + "ab-cd " * 8000 + "!",
    "do ... use, many times": "? does x use " * 5000 + "y" * 20_000,
    "what does ... do, never done": "what does " + "it's " * 10_000 + "x",
    "explain what is, many times": "explain what is " * 5000 + "!",
    "open parentheses and likes": "(a, b " * 5000 + " like x or " * 3000,
    "examples without end": "e.g. a, " * 8000 + "b",
    "choices that never end": "are " + "a or " * 12_000 + "b c !",
    "explains without a what": "explain " * 10_000 + "what x is y",
    "which specifics, no model": "which specific " * 8000 + "x",
    "differences without an and": "difference between a b " * 5000 + "c",
    "how many, never listed": "how many are does x " * 4000 + "y",
    "a topic, then no pronoun": "bert - what " + "is " * 20_000 + "x",
    "numbers without units": "1 2 3 " * 10_000 + "of tokens",
    "who makes, never it": "x which company makes " * 5000 + "y",
    # a line that is only a link is no quote: a regex for it took 5 s on 2,000 spaces
    "spaces, never a link": " " * 40_000 + "x",
    "a long label, never a link": "- " + "a " * 20_000 + ": [x](y",
}
FUNCTIONS = {"find_abbreviations": find_abbreviations, "plain_text": plain_text,
             "sections": sections, "split_markdown": lambda text: split_markdown(text, "x.md"),
             # the Course lab finds each section's missing figures on every answer card
             "figure names": lambda text: _IMG_SRC.sub("", text),
             # uploaded chunks are cut into quotable units; questions and answers are parsed
             "units": units, "asked": asked, "claims": claims, "offered term": _offered,
             "defined term": _defined, "what does X do": _DOES_Q.search, "alternatives": _alternatives,
             "a choice at the end": _CHOICE.search, "a specific pick": _PICK.search,
             "a difference between": _BETWEEN.search, "how many are listed": _COUNTED.search,
             "how is X different": _DIFFER_Q.search, "the topic first": _resolve_topic,
             "a number's unit": lambda text: _counts(text, "token")}


def _seconds(fn, text: str) -> float:
    fn(text[:100])  # a first call's lazy imports and compiled patterns are not what is timed
    start = time.perf_counter()
    fn(text)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_text_functions_are_linear_on_adversarial_input(name, kind):
    fn, text = FUNCTIONS[name], ADVERSARIAL[kind]
    # the old code: 1.2 s at 8,000 characters, 20 s at 40,000, hours at 1 MB (the upload limit)
    assert _seconds(fn, text) < 1.0


def test_abbreviations_are_still_found():
    text = "Masked Language Modeling (MLM) and NSP (Next Sentence Prediction). " * 3
    assert find_abbreviations(text) == {"MLM": "masked language modeling",
                                        "NSP": "next sentence prediction"}
    assert plain_text("see [the paper](http://x.org/a b) and [[x]]") == "see the paper and [[x]]"


NAMES = st.text(st.characters(codec="utf-8"), max_size=120)


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_an_upload_name_is_a_plain_safe_name_or_an_input_error(name):
    try:
        checked = safe_name(name)
    except InputError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert "/" not in checked and "\\" not in checked and ".." not in checked
    assert not checked.startswith(".") and checked.lower().endswith((".md", ".txt"))


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=3000),
                      st.text(max_size=3000).map(lambda s: s.encode("utf-8", "surrogatepass")),
                      st.text(alphabet="#-*[]()<>img \n`_AB(x)", max_size=3000).map(str.encode)))
def test_upload_contents_are_accepted_or_refused_clearly(tmp_path, data):
    start = time.perf_counter()
    try:
        upload = check_upload("notes.md", data, tmp_path)
    except InputError as e:
        assert str(e).startswith("notes.md")
    else:
        assert upload.text and split_markdown(upload.text, "notes.md")
    assert time.perf_counter() - start < 1.0
