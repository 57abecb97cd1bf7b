"""Thumbs up/down on answers, kept as a JSONL dataset in the eval format.

Each vote appends one row with ragas' field names, so a bad answer becomes a
test case: `user_input` is the standalone query that was searched and answered,
`reference` the endorsed answer (up-votes) or null until someone writes one
(down-votes), `reference_contexts` the passages the model saw, and the rest
(question as typed, sources, answer, template, model, vote, time) in `metadata`.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from assistant.datasets import Row
from assistant.errors import InputError

_LOCK = threading.Lock()
VOTES = ("up", "down")


def feedback_row(turn: dict, vote: str, now: datetime | None = None) -> dict:
    """The dataset row for a vote on one answered turn (as kept by the chat)."""
    if vote not in VOTES:
        raise InputError(f"a vote is 'up' or 'down', not {vote!r}")
    now = now or datetime.now(timezone.utc)
    stamp = now.isoformat(timespec="seconds")
    row = {
        "id": f"feedback-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",  # unique: a dataset id
        "user_input": turn["query"],
        "reference": turn["answer"] if vote == "up" and not turn.get("abstained") else None,
        "reference_contexts": [s["text"] for s in turn.get("sources", [])],
        "metadata": {
            "question": turn["question"], "rewritten_query": turn["query"],
            "sources": [{k: s[k] for k in ("section", "source", "score", "chunk_id")}
                        for s in turn.get("sources", [])],
            "answer": turn["answer"], "abstained": turn.get("abstained", False),
            "template": turn.get("template"), "model": turn.get("model"),
            "vote": vote, "time": stamp,
        },
    }
    Row(**row)  # the file must stay readable as a dataset
    return row


def append_feedback(path: Path, row: dict) -> None:
    """Append one row as a single write, flushed to disk (safe with concurrent voters)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(row, ensure_ascii=False) + "\n"
    with _LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
