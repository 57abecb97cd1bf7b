"""Retrieval quality: courselab's retriever vs the LangChain tutorial's, side by side.

    python evals/bench_retrieval.py [--dataset evals/datasets/course_qa.jsonl] [--k 4] [--json]

Prints hit@1, hit@k and MRR on the answerable questions for both: a hit is a
retrieved chunk that contains one of the question's reference passages.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

from assistant.datasets import read_rows  # noqa: E402
from assistant.evaluation.metrics import METRICS, Sample  # noqa: E402


def score(rankings: list[list[str]], rows: list, k: int) -> dict:
    """hit@1, hit@k and MRR@k of ranked chunk texts, by the eval harness's own metrics."""
    hit1 = hitk = rr = 0.0
    for texts, row in zip(rankings, rows):
        sample = Sample(row, hits=[{"rank": n, "text": t} for n, t in enumerate(texts[:k], 1)])
        top = Sample(row, hits=sample.hits[:1])
        hitk += METRICS["hit_at_k"].evaluate(sample)["score"]
        hit1 += METRICS["hit_at_k"].evaluate(top)["score"]
        rr += METRICS["mrr"].evaluate(sample)["score"]
    n = max(len(rankings), 1)
    return {"hit@1": round(hit1 / n, 3), f"hit@{k}": round(hitk / n, 3), "mrr": round(rr / n, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=ROOT / "evals/datasets/course_qa.jsonl", type=Path)
    parser.add_argument("--corpus", default=ROOT / "corpus", type=Path)
    parser.add_argument("--k", default=4, type=int)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    from baselines import tutorial_retriever

    from assistant.chain.factory import open_retriever
    from assistant.config import Settings

    rows = [r for r in read_rows(args.dataset) if r.answerable]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=args.corpus, index_dir=Path(tmp) / "index")
        ours = open_retriever(settings)
        results = {"courselab (hybrid)": score(
            [[h.text for h in ours.search(r.user_input, args.k)] for r in rows], rows, args.k)}
        ours.mode = "dense"
        results["courselab (dense only)"] = score(
            [[h.text for h in ours.search(r.user_input, args.k)] for r in rows], rows, args.k)
        tutorial = tutorial_retriever(next(args.corpus.glob("*.md")), args.k)
        results["LangChain tutorial"] = score(
            [[d.page_content for d in tutorial.invoke(r.user_input)] for r in rows], rows, args.k)
    if args.json:
        print(json.dumps({"questions": len(rows), "k": args.k, "results": results}))
        return
    print(f"{len(rows)} answerable questions, k={args.k}")
    print(f"{'retriever':<26}" + "".join(f"{m:>9}" for m in next(iter(results.values()))))
    for name, metrics in results.items():
        print(f"{name:<26}" + "".join(f"{v:>9.3f}" for v in metrics.values()))


if __name__ == "__main__":
    main()
