"""Calibrate the abstention threshold on the course question set.

    python evals/calibrate_threshold.py [--dataset evals/datasets/course_qa.jsonl]

For every question: the best cosine similarity of a retrieved course sentence
(what `min_score` is compared with) and the names the course never mentions.
Prints both groups side by side and the widest-margin threshold for the
unanswerable questions that the unknown-name rule does not already catch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.datasets import read_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=ROOT / "evals/datasets/course_qa.jsonl", type=Path)
    args = parser.parse_args()

    from assistant.chain.factory import build_assistant
    from assistant.config import Settings

    rows = read_rows(args.dataset)
    with tempfile.TemporaryDirectory() as tmp:
        assistant = build_assistant(Settings(index_dir=Path(tmp) / "index", model="fake"))
        prepared = [(row, assistant.prepare(row.user_input)) for row in rows]
    print(f"{'id':<6}{'best':>7}  unknown names   question")
    answerable = sorted((p.best_score, r.id) for r, p in prepared if r.answerable)
    for row, p in sorted(prepared, key=lambda x: x[1].best_score):
        if not row.answerable or p.best_score <= answerable[min(9, len(answerable) - 1)][0]:
            tag = "-" if row.answerable else "UNANSWERABLE"
            print(f"{row.id:<6}{p.best_score:>7.3f}  {','.join(p.unknown_terms) or '-':<15} "
                  f"{tag:<13}{row.user_input[:60]}")
    uncaught = [p.best_score for r, p in prepared if not r.answerable and not p.unknown_terms]
    low = max(uncaught, default=-1.0)
    high = answerable[0][0]
    print(f"\nunanswerable without unknown names: best score up to {low:.3f}; "
          f"answerable questions from {high:.3f}")
    if low < high:
        print(f"widest-margin threshold: {(low + high) / 2:.3f} (configured: {assistant.min_score})")
    else:
        print("no threshold separates them: the groups overlap")


if __name__ == "__main__":
    main()
