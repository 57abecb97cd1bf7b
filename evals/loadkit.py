"""What the two load scripts (load_app.py, load_api.py) share: bounds, questions, options."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals/datasets/course_qa.jsonl"
MAX_CLIENTS, MAX_SECONDS, REQUEST_TIMEOUT = 64, 600, 300


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [r["user_input"] for r in rows][:n]


def options(description: str) -> tuple[str, str, int, float]:
    """(model, embedder, clients, seconds) from the command line, bounded."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="fake", help="registry name [fake]")
    parser.add_argument("--embedder", help="[fake-hash with the fake model, else all-MiniLM-L6-v2]")
    parser.add_argument("--clients", type=int, help="[20 with the fake model, else 4]")
    parser.add_argument("--seconds", type=float, default=60)
    opts = parser.parse_args()
    clients = opts.clients or (20 if opts.model == "fake" else 4)
    if not (1 <= clients <= MAX_CLIENTS and 1 <= opts.seconds <= MAX_SECONDS):
        raise SystemExit(f"--clients 1..{MAX_CLIENTS}, --seconds 1..{MAX_SECONDS}")
    embedder = opts.embedder or ("fake-hash" if opts.model == "fake" else "all-MiniLM-L6-v2")
    return opts.model, embedder, clients, opts.seconds
