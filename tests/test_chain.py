"""The answering chain with fakes: structure, grounding, abstention, stream and batch."""

from __future__ import annotations

import pytest

from assistant.chain import NOT_COVERED, Answer, Prepared
from assistant.chain.factory import build_assistant
from assistant.errors import InputError

COURSE_Q = "What percentage of tokens does BERT mask?"


@pytest.fixture
def assistant(settings):
    return build_assistant(settings)


def test_answer_is_structured_and_grounded(assistant):
    assistant.model.enqueue("BERT masks 15% of the tokens.")
    answer = assistant.answer(COURSE_Q)
    assert isinstance(answer, Answer) and not answer.abstained
    assert answer.answer == "BERT masks 15% of the tokens."
    assert answer.model == "fake"
    assert COURSE_Q in answer.prompt and "15%" in answer.prompt
    assert answer.prompt == assistant.model.history[-1]  # the prompt shown is what the model got
    assert answer.sources and all(s.section for s in answer.sources)
    assert set(answer.timings) >= {"retrieve_s", "generate_s", "total_s"}
    assert answer.tokens["input"] > 0 and answer.tokens["output"] == 6
    assert set(answer.to_dict()) >= {"answer", "abstained", "sources", "model", "prompt",
                                     "timings", "tokens", "budget", "reasoning"}
    assert answer.budget.dropped == [] and answer.budget.prompt_tokens <= answer.budget.limit


def test_sources_are_only_what_the_model_saw(assistant):
    prepared = assistant.prepare(COURSE_Q)
    answer = assistant.answer_prepared([prepared])[0]
    shown = {p.hit.chunk_id for p in prepared.passages}
    assert {s.chunk_id for s in answer.sources} == shown
    for passage in prepared.passages:  # each sentence sent comes from its source chunk
        for sentence in passage.sentences:
            assert sentence.split(";")[0].rstrip(".").replace("**", "")[:20] in \
                passage.hit.text.replace("**", "")


def test_off_topic_question_abstains_without_calling_the_model(assistant):
    answer = assistant.answer("Who won the 2018 FIFA World Cup?")
    assert answer.abstained and answer.answer.startswith(NOT_COVERED)
    assert "closest sections" in answer.answer and answer.sources
    assert assistant.model.history == [] and answer.prompt == ""


def test_low_similarity_abstains(assistant):
    assistant.min_score = 0.99
    assert assistant.answer(COURSE_Q).abstained
    assistant.min_score = 0.0
    assert not assistant.answer(COURSE_Q).abstained


def test_stream_yields_text_then_the_answer(assistant):
    assistant.model.enqueue("BERT masks fifteen percent of tokens.")
    pieces = list(assistant.stream(COURSE_Q))
    prepared, *text, final = pieces
    assert isinstance(prepared, Prepared) and prepared.quote  # the course's words come first
    assert all(isinstance(p, str) for p in text) and len(text) > 1
    assert isinstance(final, Answer) and "".join(text).strip() == final.answer
    assert "first_token_s" in final.timings


def test_stream_of_an_abstention(assistant):
    _, *text, final = list(assistant.stream("Who won the 2018 FIFA World Cup?"))
    assert final.abstained and "".join(text) == final.answer


def test_batch_answers_in_order_and_skips_the_model_for_abstentions(assistant):
    questions = [COURSE_Q, "Who won the 2018 FIFA World Cup?", "What is multi-head attention?"]
    assistant.model.enqueue("one", "two")
    answers = assistant.batch(questions)
    assert [a.abstained for a in answers] == [False, True, False]
    assert [a.answer for a in answers if not a.abstained] == ["one", "two"]
    assert len(assistant.model.history) == 2


def test_lcel_chain_invokes_end_to_end(assistant):
    assistant.model.enqueue("answer")
    assert assistant.chain.invoke(COURSE_Q).answer == "answer"


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("   \n ", "empty"), ("x" * 1001, "limit is 1000")])
def test_bad_questions(assistant, question, message):
    with pytest.raises(InputError, match=message):
        assistant.answer(question)


def test_index_is_built_on_first_use(settings):
    notes = []
    build_assistant(settings, notify=notes.append)
    assert any("building it" in n for n in notes)
    notes.clear()
    build_assistant(settings, notify=notes.append)
    assert notes == []
