"""Thumbs up/down on answers, kept as a JSONL dataset in the eval format.

Each vote appends one row with ragas' field names, so a bad answer becomes a
test case. An up-vote endorses the answer: `reference` is the answer (null when
the vote endorses an abstention: the course does not answer it), and
`reference_contexts` the passages the model saw. A down-vote says "this answer
was wrong", not "this question is unanswerable": the row has no `reference`, no
reference contexts, and `metadata.needs_reference: true`, so metrics skip it until
an evaluator writes the right answer (`courselab eval references`). The rest
(question as typed, sources, answer, passages seen, template, model, vote, time)
is in `metadata`.

What is voted on is the server's own record of the answer (`TurnLog`), looked up
by the id the server gave it: a browser can name a turn, never rewrite it.
Rows are appended whole, one `os.write` on an O_APPEND descriptor under a lock
file; a tail cut by a killed writer is cut off by the next write.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from assistant.datasets import Row
from assistant.errors import InputError

log = logging.getLogger("courselab")
_LOCK = threading.Lock()  # threads of this process; the lock file orders processes
VOTES = ("up", "down")
EXTRA_FIELDS = ("quote", "support", "lead")  # grounding details, kept when the record has them
MAX_REFERENCE_CHARS = 4000
_TURN_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def feedback_row(turn: dict, vote: str, now: datetime | None = None) -> dict:
    """The dataset row for a vote on one answered turn (the server's record of it)."""
    if vote not in VOTES:
        raise InputError(f"a vote is 'up' or 'down', not {vote!r}")
    now = now or datetime.now(timezone.utc)
    passages = [s["text"] for s in turn.get("sources", [])]
    meta = {
        "question": turn["question"], "rewritten_query": turn["query"],
        "sources": [{k: s.get(k) for k in ("section", "source", "score", "chunk_id")}
                    for s in turn.get("sources", [])],
        "answer": turn["answer"], "abstained": bool(turn.get("abstained", False)),
        "template": turn.get("template"), "model": turn.get("model"),
        **{k: turn[k] for k in EXTRA_FIELDS if turn.get(k) is not None},
        "vote": vote, "time": now.isoformat(timespec="seconds"),
    }
    row = {"id": f"feedback-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",  # unique: a dataset id
           "user_input": turn["query"]}
    if vote == "up":  # what the student read first: the course's quote when it led
        row["reference"] = None if meta["abstained"] else (turn.get("lead") or turn["answer"])
        row["reference_contexts"] = passages
    else:  # wrong, not unanswerable: no reference until someone writes one
        row["reference_contexts"] = []
        meta.update(needs_reference=True, contexts_seen=passages)
    row["metadata"] = meta
    Row(**row)  # the file must stay readable as a dataset
    return row


def needs_reference(row: Row | dict) -> bool:
    """True for a down-voted row whose right answer nobody has written yet."""
    meta = row.metadata if isinstance(row, Row) else row.get("metadata") or {}
    reference = row.reference if isinstance(row, Row) else row.get("reference")
    return reference is None and bool(meta.get("needs_reference"))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """This process's threads and every other process, one at a time on the feedback file.

    Subtle: the lock is a separate file, so rewriting the data file (os.replace) never
    leaves a writer appending to an unlinked copy.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd)
            yield
        finally:
            os.close(fd)  # closing releases the lock; so does a kill


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: the thread lock only
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def append_feedback(path: Path, row: dict) -> None:
    """Append one row as one whole line, flushed to disk; a cut tail is removed first."""
    path = Path(path)
    data = _line(row).encode("utf-8")
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _repair_tail(fd, path)
            written = os.write(fd, data)
            while written < len(data):  # a short write without a kill is rare; finish it
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)


def _line(row: dict) -> str:
    """One JSON line; U+0085, U+2028 and U+2029 escaped, since str.splitlines breaks on them."""
    text = json.dumps(row, ensure_ascii=False)
    return text.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace(
        "\u2029", "\\u2029") + "\n"


def _repair_tail(fd: int, path: Path) -> None:
    """Cut a last line that has no newline (a writer killed mid-write) back to the last whole row."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
    log.warning("feedback: removed %d bytes of a row cut by an interrupted write in %s",
                size - end, path)
    os.ftruncate(fd, end)


class TurnLog:
    """The server's record of recent answers, by an id it hands out (bounded, thread-safe).

    A vote names a turn by that id; the question and answer written to the feedback file
    come from here, never from the browser. The same vote twice writes one row.
    """

    def __init__(self, size: int = 1000):
        self.size = size
        self._turns: OrderedDict[str, dict] = OrderedDict()
        self._votes: dict[str, dict] = {}  # turn id -> the row its vote wrote
        self._lock = threading.Lock()

    def remember(self, record: dict) -> str:
        """Keep a copy of an answered turn; the id to vote on it with."""
        turn_id = secrets.token_urlsafe(12)  # unguessable: a visitor votes only on turns it saw
        with self._lock:
            self._turns[turn_id] = json.loads(json.dumps(record))  # a copy no caller can change
            while len(self._turns) > self.size:
                old, _ = self._turns.popitem(last=False)
                self._votes.pop(old, None)
        return turn_id

    def get(self, turn_id: object) -> dict:
        if not isinstance(turn_id, str) or not _TURN_ID.fullmatch(turn_id):
            raise InputError("this answer cannot be voted on (no id from this server)")
        with self._lock:
            record = self._turns.get(turn_id)
        if record is None:
            raise InputError("this answer is no longer known to the server (it restarted or the "
                             "answer is too old); ask again to vote")
        return record

    def voted(self, turn_id: object) -> str | None:
        """The vote already saved for a turn ('up' or 'down'), or None."""
        with self._lock:
            done = self._votes.get(turn_id) if isinstance(turn_id, str) else None
        return done["metadata"]["vote"] if done else None

    def vote(self, turn_id: object, vote: str, path: Path) -> dict:
        """Write the feedback row for a vote on a remembered turn; returns the row."""
        record = self.get(turn_id)
        if record.get("error"):
            raise InputError("there is no answer to vote on here")
        row = feedback_row(record, vote)
        with self._lock:  # one vote an answer: the check and the write are one step
            done = self._votes.get(turn_id)
            if done is not None and done["metadata"]["vote"] == vote:
                return done  # the same vote twice: one row
            if done is not None:
                raise InputError(f"this answer already has a vote ({done['metadata']['vote']}) "
                                 "in the feedback file")
            append_feedback(path, row)
            self._votes[turn_id] = row
        return row


# --- writing the missing references -------------------------------------------------------
def write_references(path: Path, answers: dict[str, str | None]) -> int:
    """Set references by row id (None: the course does not answer it); returns rows changed.

    The file is rewritten atomically under the feedback lock, so votes arriving meanwhile
    are kept.
    """
    path = Path(path)
    with _locked(path):
        text = path.read_text(encoding="utf-8")
        lines = [line + "\n" for line in text.split("\n")[:-1]]
        lines += [text.rsplit("\n", 1)[-1]] if not text.endswith("\n") else []
        changed = 0
        out = []
        for line in lines:
            row = _parse(line)
            if row is not None and row.get("id") in answers:
                line = _line(_with_reference(row, answers[row["id"]]))
                changed += 1
            out.append(line if line.endswith("\n") else "")  # a cut tail goes
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(out)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return changed


def _parse(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def _with_reference(row: dict, reference: str | None) -> dict:
    if reference is not None:
        reference = check_reference(reference)
    meta = {k: v for k, v in (row.get("metadata") or {}).items() if k != "needs_reference"}
    meta["reference_by"] = "evaluator"
    out = {**row, "reference": reference, "metadata": meta}
    Row(**out)
    return out


def check_reference(text: str) -> str:
    """A reference typed by an evaluator: non-empty, bounded."""
    text = text.strip()
    if not text:
        raise InputError("a reference cannot be empty")
    if len(text) > MAX_REFERENCE_CHARS:
        raise InputError(f"a reference is at most {MAX_REFERENCE_CHARS} characters")
    return text


def repair(path: Path) -> None:
    """Remove a row cut by a killed writer (what the next vote would do anyway)."""
    path = Path(path)
    if not path.is_file():
        return
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            _repair_tail(fd, path)
        finally:
            os.close(fd)


def pending_references(path: Path) -> list[dict]:
    """Rows of the feedback file that still need a reference, oldest first."""
    from assistant.datasets import load_dataset

    repair(path)
    return [r.model_dump() for r in load_dataset(Path(path)) if needs_reference(r)]

