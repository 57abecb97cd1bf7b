"""Retrieve + compress for every course question, without and with the embedder's memo.

    python evals/bench_memo.py

Compression embeds the sentences of each retrieved chunk; the same chunks come back
for many questions, so the embedder keeps recently embedded texts. Both runs start
with an empty memo, in one process, on the same index; prints the ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.chain.factory import build_assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.datasets import read_rows  # noqa: E402
from assistant.retrieval import embeddings  # noqa: E402


def main() -> None:
    rows = read_rows(ROOT / "evals/datasets/course_qa.jsonl")
    assistant = build_assistant(Settings(), "fake")  # no generation: retrieval and compression only
    assistant.retrieve("warm up")
    times = {}
    for size in (0, embeddings.MEMO_SIZE):
        embeddings.MEMO_SIZE = size
        assistant.retriever.index.embedder._memo.clear()
        start = time.perf_counter()
        for row in rows:
            assistant.retrieve(row.user_input)
        times[size] = time.perf_counter() - start
        print(f"memo of {size:>5} texts: {len(rows)} questions in {times[size]:.2f} s")
    print(f"{times[0] / times[embeddings.MEMO_SIZE]:.1f}x faster with the memo")


if __name__ == "__main__":
    main()
