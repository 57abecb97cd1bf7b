"""When may the model's answer lead? Replay a DEV run's rows under each agreement threshold.

Reads the results of `courselab eval run evals/suites/course_grounded_dev.yaml --out DIR`
and, for every model and threshold, counts the answerable questions whose lead (the
model's answer when supported and agreeing with the quote that much, else the quote)
holds every key fact. No model is called: the answers, quotes and verdicts are the run's.
Tune grounding.LEAD_AGREEMENT here, on the dev split only.

    .venv/bin/python evals/lead_policy.py DIR/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.chain.grounding import LEAD_AGREEMENT, Quote, agreement  # noqa: E402
from assistant.text import has_key_facts  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def lead_holds(row: dict, threshold: float) -> tuple[bool, bool]:
    """(the lead holds every key fact, the model's answer leads) for one row."""
    quote = [Quote(q["text"], q["section"], q["chunk_id"], tuple(q["span"]) if q["span"] else None)
             for q in row.get("quote") or []]
    supported = (row.get("support") or {}).get("verdict") == "supported"
    leads = (not row["abstained"] and supported
             and agreement(row["answer"], quote, row["question"]) >= threshold)
    lead = row["answer"] if leads else " ".join(q.text for q in quote)
    return (not row["abstained"] and has_key_facts(lead, row["metadata"]["key_facts"])), leads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a dev run's results.jsonl")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    if any(r["metadata"].get("split") == "test" for r in rows):
        sys.exit("error: this run holds test-split rows; tune on the dev split only")
    # rows without a prompt are the extractive baseline's: its answer is the quote
    answerable = [r for r in rows if r["metadata"].get("kind") == "answerable" and r.get("prompt")]
    for model in dict.fromkeys(r["model"] for r in answerable):
        mine = [r for r in answerable if r["model"] == model]
        print(f"{model} ({len(mine)} answerable)")
        for t in THRESHOLDS:
            results = [lead_holds(r, t) for r in mine]
            mark = "  <- LEAD_AGREEMENT" if t == LEAD_AGREEMENT else ""
            print(f"  agreement >= {t:.1f}: lead holds every key fact {sum(h for h, _ in results)}"
                  f"/{len(mine)}, the model's answer leads {sum(m for _, m in results)}{mark}")


if __name__ == "__main__":
    main()
