"""The context budget: lowest-ranked passages go first, then the last is shortened."""

from __future__ import annotations

import pytest

from assistant.chain.budget import fit
from assistant.chain.compress import Passage
from assistant.chain.factory import build_assistant
from assistant.errors import InputError
from assistant.retrieval import Hit

QUESTION = "What percentage of tokens does BERT mask?"


def passage(n: int, sentences: list[str]) -> Passage:
    return Passage(Hit(n, 0.5, f"S{n}", " ".join(sentences), "x.md", f"id{n}"), tuple(sentences), 0.5)


def words(passages):
    return 10 + sum(len(s.split()) for p in passages for s in p.sentences)  # 10: instructions


PASSAGES = [passage(1, ["one two three four five."]), passage(2, ["a b c d e f g h i j."]),
            passage(3, ["x y z w v u t s r q p o."])]


def test_everything_fits():
    kept, budget = fit(PASSAGES, words, 100)
    assert kept == PASSAGES and budget.dropped == [] and not budget.shortened


def test_lowest_ranked_passages_are_dropped_first():
    kept, budget = fit(PASSAGES, words, 26)
    assert [p.hit.chunk_id for p in kept] == ["id1", "id2"]
    assert budget.dropped == ["id3"] and budget.prompt_tokens == 25


def test_the_last_passage_is_shortened_when_one_is_left():
    long = [passage(1, ["alpha beta gamma delta.", "epsilon zeta eta theta iota kappa."])]
    kept, budget = fit(long, words, 15)
    assert kept[0].sentences == ("alpha beta gamma delta.",) and budget.shortened
    kept, budget = fit(long, words, 12)
    assert kept[0].sentences[0].endswith("…") and budget.prompt_tokens <= 12


def test_instructions_and_question_are_never_cut():
    with pytest.raises(InputError, match="input window is 5"):
        fit(PASSAGES, words, 5)


def test_chain_fits_a_small_window_and_lists_only_what_the_model_saw(settings):
    roomy = build_assistant(settings).answer(QUESTION)
    assistant = build_assistant(settings)
    reserve = assistant.model.options.max_new_tokens  # a causal model's answer shares the window
    assistant.model.context_window = roomy.budget.prompt_tokens - 1 + reserve
    answer = assistant.answer(QUESTION)
    assert answer.budget.dropped or answer.budget.shortened
    assert answer.budget.prompt_tokens <= answer.budget.limit
    assert not {s.chunk_id for s in answer.sources} & set(answer.budget.dropped)
    assert QUESTION in answer.prompt and len(answer.prompt) < len(roomy.prompt)
