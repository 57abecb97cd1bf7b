"""Votes are appended as dataset rows that the eval loader reads back."""

import threading
from datetime import datetime, timezone

import pytest

from assistant.datasets import read_rows
from assistant.errors import InputError
from assistant.feedback import append_feedback, feedback_row

TURN = {"question": "and how many parameters?", "query": "How many parameters does BERT have?",
        "answer": "BERT base has 110M parameters.", "abstained": False,
        "sources": [{"section": "BERT", "source": "course.md", "score": 0.61, "chunk_id": "abc",
                     "text": "BERT base: 110M parameters", "rank": 1}],
        "model": "fake", "template": "default"}


def test_rows_are_dataset_rows_with_the_whole_turn(tmp_path):
    path = tmp_path / "feedback.jsonl"
    when = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    append_feedback(path, feedback_row(TURN, "up", when))
    append_feedback(path, feedback_row(TURN, "down", when))
    up, down = read_rows(path)
    assert up.user_input == TURN["query"] and up.reference == TURN["answer"]
    assert down.reference is None  # a bad answer is no reference
    assert up.reference_contexts == ["BERT base: 110M parameters"]
    meta = down.metadata
    assert meta["vote"] == "down" and meta["question"] == TURN["question"]
    assert meta["rewritten_query"] == TURN["query"] and meta["model"] == "fake"
    assert meta["sources"][0]["section"] == "BERT" and meta["time"] == "2026-11-29T12:00:00+00:00"


def test_concurrent_votes_never_interleave(tmp_path):
    path = tmp_path / "feedback.jsonl"
    threads = [threading.Thread(target=lambda: [append_feedback(path, feedback_row(TURN, "up"))
                                                for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = read_rows(path)  # every line whole, every id unique
    assert len(rows) == 80


def test_a_vote_is_up_or_down():
    with pytest.raises(InputError, match="'up' or 'down'"):
        feedback_row(TURN, "meh")
