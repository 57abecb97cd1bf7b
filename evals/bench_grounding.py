"""Time to the quote and to the first model token, warm, on course questions.

    .venv/bin/python evals/bench_grounding.py [--model smollm2-135m-instruct] [--questions 8]

The quote is what the student reads first when the model's answer is not supported; it is
shown as soon as retrieval is done, before the model starts. Prints the median and the
worst of each over the first N answerable test-split questions (after one warm-up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.chain import Prepared  # noqa: E402
from assistant.chain.factory import build_assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.datasets import load_dataset, select  # noqa: E402


def timed(assistant, question: str) -> tuple[float, float | None]:
    """Seconds from asking to the quote, and to the first model token (None: no model ran)."""
    start, quote, first, model_runs = time.perf_counter(), None, None, False
    for piece in assistant.stream(question):
        if isinstance(piece, Prepared):
            quote = time.perf_counter() - start
            model_runs = not piece.abstained and assistant.generates
        elif isinstance(piece, str) and piece and first is None and model_runs:
            first = time.perf_counter() - start
    return quote, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [r for r in select(load_dataset(ROOT / "evals/datasets/course_qa.jsonl"),
                              ["metadata.split=test"], None) if r.answerable][: args.questions]
    assistant = build_assistant(Settings(corpus_dir=ROOT / "corpus"), args.model)
    timed(assistant, "What is BERT?")  # warm-up: weights, index, embedder
    quotes, firsts = [], []
    for row in rows:
        quote, first = timed(assistant, row.user_input)
        quotes.append(quote)
        if first is not None:
            firsts.append(first)
    result = {"model": args.model, "questions": len(rows),
              "quote_s": {"median": round(statistics.median(quotes), 3), "max": round(max(quotes), 3)},
              "first_token_s": {"median": round(statistics.median(firsts), 3),
                                "max": round(max(firsts), 3)} if firsts else None}
    print(json.dumps(result) if args.json else
          f"{args.model}, {len(rows)} questions, warm: quote after {result['quote_s']['median']} s "
          f"(worst {result['quote_s']['max']} s); first model token after "
          + (f"{result['first_token_s']['median']} s (worst {result['first_token_s']['max']} s)"
             if firsts else "- (no model ran)"))


if __name__ == "__main__":
    main()
