"""Answer quality with the offline model: courselab's default path vs the tutorial path.

    python evals/answer_quality.py [--limit N] [--out results.jsonl] [--skip-tutorial]

Both paths use SmolLM2-135M-Instruct with greedy decoding. An answer is correct
when it contains every key fact of its question (metadata.key_facts). Prints
the share of correct answers, abstentions on the unanswerable questions and
false abstentions on the answerable ones.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

from assistant.datasets import read_rows  # noqa: E402
from assistant.evaluation.metrics import METRICS, Sample  # noqa: E402

BATCH = 16
IDK = re.compile(r"don'?t know|do not know|not (covered|mentioned|provided|included)|"
                 r"cannot answer|can't answer|no information", re.IGNORECASE)


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_ours(assistant, rows) -> list[dict]:
    out = []
    for group in chunks(rows, BATCH):
        for ans in assistant.batch([r.user_input for r in group]):
            out.append({"answer": ans.answer, "abstained": ans.abstained,
                        "sections": [h.section for h in ans.sources]})
    return out


def run_tutorial(model, retriever, prompt, rows) -> list[dict]:
    out = []
    for group in chunks(rows, BATCH):
        inputs = [{"question": r.user_input, "context": "\n\n".join(
            d.page_content for d in retriever.invoke(r.user_input))} for r in group]
        replies = model.batch([prompt.invoke(i) for i in inputs], max_new_tokens=128)
        out.extend({"answer": m.content, "abstained": bool(IDK.search(m.content)),
                    "sections": []} for m in replies)
    return out


def summarise(rows, results) -> dict:
    """Correct answers (every key fact) and abstention, by the eval harness's own metrics."""
    samples = [(r, Sample(r, a["answer"], a["abstained"])) for r, a in zip(rows, results)]
    answerable = [(r, s) for r, s in samples if r.answerable]
    unanswerable = [(r, s) for r, s in samples if not r.answerable]
    correct = sum(not s.abstained and METRICS["key_facts"].evaluate(s)["pass"] for _, s in answerable)
    return {"answerable": len(answerable), "correct": correct,
            "correct_share": round(correct / max(len(answerable), 1), 3),
            "unanswerable": len(unanswerable),
            "abstained_on_unanswerable": sum(METRICS["abstention"].evaluate(s)["pass"]
                                             for _, s in unanswerable),
            "false_abstentions": sum(s.abstained for _, s in answerable)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=ROOT / "evals/datasets/course_qa.jsonl", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--out", type=Path, help="write per-question results as JSONL")
    parser.add_argument("--skip-tutorial", action="store_true", help="only run courselab's path")
    parser.add_argument("--template", default="default", help="courselab template to use")
    args = parser.parse_args()

    from assistant.chain.factory import build_assistant
    from assistant.config import Settings

    rows = read_rows(args.dataset)[: args.limit]
    summary, per_path = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp) / "index")
        assistant = build_assistant(settings, template_name=args.template)
        t0 = time.perf_counter()
        per_path["courselab"] = run_ours(assistant, rows)
        summary["courselab"] = {**summarise(rows, per_path["courselab"]),
                                "seconds": round(time.perf_counter() - t0, 1)}
        if not args.skip_tutorial:
            from baselines import tutorial_prompt, tutorial_retriever

            retriever = tutorial_retriever(next((ROOT / "corpus").glob("*.md")))
            t0 = time.perf_counter()
            per_path["tutorial"] = run_tutorial(assistant.model, retriever, tutorial_prompt(), rows)
            summary["tutorial"] = {**summarise(rows, per_path["tutorial"]),
                                   "seconds": round(time.perf_counter() - t0, 1)}
    if args.out:
        with args.out.open("w") as f:
            for i, row in enumerate(rows):
                f.write(json.dumps({"id": row.id, "user_input": row.user_input,
                                    "key_facts": row.key_facts,
                                    **{p: r[i] for p, r in per_path.items()}}) + "\n")
    print(json.dumps(summary, indent=2))
    if "tutorial" in summary:
        ratio = summary["courselab"]["correct_share"] / max(summary["tutorial"]["correct_share"], 1e-9)
        print(f"correct answers: courselab {summary['courselab']['correct_share']:.3f} vs "
              f"tutorial {summary['tutorial']['correct_share']:.3f} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
