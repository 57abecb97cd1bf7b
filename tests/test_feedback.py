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


def test_an_up_vote_endorses_what_the_student_read_first(tmp_path):
    quoted = "BERT-Base: 12 transformer layers, 110M parameters."
    led_by_quote = {**TURN, "answer": "BERT has 11B parameters.", "lead": quoted,
                    "lead_from": "quote"}
    row = feedback_row(led_by_quote, "up")
    assert row["reference"] == quoted  # never the model's answer the course did not back
    assert row["metadata"]["answer"] == "BERT has 11B parameters."  # kept, for the record


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


# --- a down-vote is "wrong", not "unanswerable" ------------------------------------------
def test_a_down_vote_has_no_reference_and_needs_one(tmp_path):
    import json

    from assistant.feedback import needs_reference

    path = tmp_path / "feedback.jsonl"
    append_feedback(path, feedback_row(TURN, "down"))
    raw = json.loads(path.read_text())
    assert "reference" not in raw and raw["reference_contexts"] == []
    assert raw["metadata"]["needs_reference"] is True and raw["metadata"]["vote"] == "down"
    assert raw["metadata"]["contexts_seen"] == ["BERT base: 110M parameters"]
    (row,) = read_rows(path)
    assert needs_reference(row)


def test_down_votes_are_no_abstention_cases_for_any_metric(tmp_path):
    from assistant.evaluation.metrics import METRICS, Sample

    path = tmp_path / "feedback.jsonl"
    for _ in range(2):
        append_feedback(path, feedback_row(TURN, "down"))
    for row in read_rows(path):
        sample = Sample(row, answer=TURN["answer"], abstained=False, context="BERT base",
                        hits=[{"text": "BERT base: 110M parameters"}], embed=lambda t: [[1.0]] * 2,
                        judge=lambda s: "Grade: 5")
        for name in ("abstention", "exact_match", "token_f1", "hit_at_k", "mrr", "judge",
                     "semantic_similarity"):
            result = METRICS[name].evaluate(sample)
            assert result["score"] is None and result["pass"] is None, name
        assert METRICS["answer_length"].evaluate(sample)["score"] is not None  # needs no reference


def test_a_written_reference_makes_the_row_a_test_case(tmp_path):
    from assistant.evaluation.metrics import METRICS, Sample
    from assistant.feedback import needs_reference, pending_references, write_references

    path = tmp_path / "feedback.jsonl"
    wrong, unanswerable = feedback_row(TURN, "down"), feedback_row(TURN, "down")
    for row in (wrong, unanswerable, feedback_row(TURN, "up")):
        append_feedback(path, row)
    assert [r["id"] for r in pending_references(path)] == [wrong["id"], unanswerable["id"]]
    changed = write_references(path, {wrong["id"]: "BERT base has 110 million parameters.",
                                      unanswerable["id"]: None})
    assert changed == 2 and pending_references(path) == []
    rows = {r.id: r for r in read_rows(path)}
    assert len(rows) == 3 and not any(needs_reference(r) for r in rows.values())
    fixed = rows[wrong["id"]]
    assert fixed.reference == "BERT base has 110 million parameters."
    score = METRICS["token_f1"].evaluate(Sample(fixed, answer=TURN["answer"]))
    assert score["score"] is not None
    refused = rows[unanswerable["id"]]  # now: the course does not answer it
    assert METRICS["abstention"].evaluate(Sample(refused, abstained=True))["pass"] is True


# --- a kill mid-write ----------------------------------------------------------------------
KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from assistant import feedback
turn = {turn!r}
path = {path!r}
for _ in range(3):
    feedback.append_feedback(path, feedback.feedback_row(turn, "up"))
real = os.write

def half_then_die(fd, data):  # kill -9 with half the row on disk
    real(fd, data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

feedback.os.write = half_then_die
feedback.append_feedback(path, feedback.feedback_row(turn, "down"))
"""


def test_a_write_killed_midway_is_repaired_by_the_next_vote(tmp_path):
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    path = tmp_path / "feedback.jsonl"
    script = KILLED_WRITER.format(root=str(ROOT), turn=TURN, path=str(path))
    dead = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    assert not path.read_bytes().endswith(b"\n")  # a cut row at the end
    after = feedback_row(TURN, "down")
    append_feedback(path, after)  # the next start's first vote
    append_feedback(path, feedback_row(TURN, "up"))
    rows = read_rows(path)  # loads as a dataset: no partial line anywhere
    assert [r.metadata["vote"] for r in rows] == ["up", "up", "up", "down", "up"]
    assert rows[3].id == after["id"] and len({r.id for r in rows}) == 5


# --- votes name the server's record -------------------------------------------------------
def test_a_vote_writes_the_servers_record_not_the_browsers(tmp_path):
    from assistant.feedback import TurnLog

    path = tmp_path / "feedback.jsonl"
    log = TurnLog(size=2)
    turn_id = log.remember(TURN)
    assert log.voted(turn_id) is None
    row = log.vote(turn_id, "up", path)  # the browser sends the id and the vote, nothing else
    assert row["reference"] == TURN["answer"] and log.voted(turn_id) == "up"
    assert log.vote(turn_id, "up", path) == row  # the same vote twice: one row
    assert len(read_rows(path)) == 1
    with pytest.raises(InputError, match=r"already has a vote \(up\)"):  # never both up and down
        log.vote(turn_id, "down", path)
    assert len(read_rows(path)) == 1
    for bad in ("", "x" * 500, {**TURN, "answer": "forged"}, "unknown-turn-id-123"):
        with pytest.raises(InputError):
            log.vote(bad, "up", path)
    log.remember(TURN)
    log.remember(TURN)  # bounded: the oldest turn is forgotten
    with pytest.raises(InputError, match="no longer known"):
        log.vote(turn_id, "down", path)


def test_the_record_is_a_copy_callers_cannot_change(tmp_path):
    from assistant.feedback import TurnLog

    record = {**TURN, "sources": [dict(TURN["sources"][0])]}
    log = TurnLog()
    turn_id = log.remember(record)
    record["answer"] = "changed later"
    record["sources"][0]["text"] = "changed later"
    row = log.vote(turn_id, "up", tmp_path / "f.jsonl")
    assert row["reference"] == TURN["answer"] and row["reference_contexts"] == [TURN["sources"][0]["text"]]


# --- properties: any cut, any id --------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4),
       cut=st.integers(min_value=1, max_value=10_000))
def test_a_cut_at_any_byte_loses_only_the_cut_row(tmp_path_factory, answers, cut):
    path = tmp_path_factory.mktemp("fb") / "feedback.jsonl"
    rows = [feedback_row({**TURN, "answer": a}, "up") for a in answers]
    for row in rows:
        append_feedback(path, row)
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    keep = last_start + cut % (len(data) - last_start)  # somewhere inside the last row
    path.write_bytes(data[:keep])
    new = feedback_row(TURN, "down")
    append_feedback(path, new)
    ids = [r.id for r in read_rows(path)]
    assert ids == [r["id"] for r in rows[:-1]] + [new["id"]]


@settings(max_examples=100, deadline=None)
@given(turn_id=st.one_of(st.text(max_size=100), st.integers(), st.none(),
                         st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)))
def test_any_turn_id_from_outside_is_a_clear_error(turn_id):
    from assistant.feedback import TurnLog

    log = TurnLog()
    log.remember(TURN)
    with pytest.raises(InputError):
        log.get(turn_id)
