"""Evaluation throughput: the runner's batched generation vs one question at a time.

    python evals/bench_eval.py [--items 16] [--template default]

Both run the same items with the offline model, without the cache, in one process;
prints the wall time of each, answers per second, and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import Settings  # noqa: E402
from assistant.evaluation.runner import Runner  # noqa: E402
from assistant.evaluation.suite import make_suite  # noqa: E402


def timed(suite, settings, out: Path, batch_size: int) -> tuple[float, list[dict]]:
    runner = Runner(suite, settings, out, use_cache=False, batch_size=batch_size)
    start = time.perf_counter()
    rows = runner.run()
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--template", default="default")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    settings = Settings(index_dir=work / "index", cache_dir=ROOT / ".cache", runs_dir=work)
    suite = make_suite({"description": "throughput", "templates": [opts.template],
                        "datasets": [ROOT / "evals/datasets/course_qa.jsonl"], "limit": opts.items,
                        "models": [settings.model], "metrics": ["key_facts"]})
    Runner(suite, settings, work / "warm", use_cache=False, batch_size=opts.items).run()  # load all
    one_s, one = timed(suite, settings, work / "one", 1)
    batch_s, batched = timed(suite, settings, work / "batched", 16)
    answered = sum(not r["abstained"] for r in one)
    same = sum(a["answer"] == b["answer"] for a, b in zip(one, batched))
    print(f"{len(one)} items ({answered} answered by the model), {settings.model}, template {opts.template}")
    print(f"one at a time: {one_s:6.1f} s  {answered / one_s:.2f} answers/s")
    print(f"batched (16):  {batch_s:6.1f} s  {answered / batch_s:.2f} answers/s  ({one_s / batch_s:.2f}x)")
    print(f"identical answers: {same}/{len(one)}")


if __name__ == "__main__":
    main()
