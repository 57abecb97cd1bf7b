"""A classroom at once: N students ask the local model at the same moment.

Runs both ways in one process on the real model (no network: the clients are threads
streaming from the model, as the app's and serve-api's request threads do):
serialised (max_batch 1: one answer after another, today's lock) vs batched (the
dynamic batcher). Prints, per way and class size: time to first token and to the full
answer (p50, max), throughput, and the last answer's time over one answer alone.
Bounded: at most 64 clients and 128 tokens each.

    .venv/bin/python evals/bench_classroom.py --clients 8 16 --new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ask_all(model, prompts, opts) -> list[tuple[float, float, int]]:
    """Every prompt streamed from its own thread at once: (first token s, done s, tokens)."""
    from assistant.models.hf import Generation

    results: list = [None] * len(prompts)
    gate = threading.Barrier(len(prompts) + 1)

    def client(i):
        gate.wait()
        start = time.perf_counter()
        first, tokens = None, 0
        for piece in model.stream_text(prompts[i], opts):
            if first is None:
                first = time.perf_counter() - start
            if isinstance(piece, Generation):
                tokens = piece.output_tokens
        results[i] = (first or 0.0, time.perf_counter() - start, tokens)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    gate.wait()
    for t in threads:
        t.join(timeout=1800)
    return results


def summary(name: str, results, alone: float) -> dict:
    firsts = [r[0] for r in results]
    dones = [r[1] for r in results]
    row = {"way": name, "clients": len(results),
           "first_token_p50_s": statistics.median(firsts), "first_token_max_s": max(firsts),
           "answer_p50_s": statistics.median(dones), "answer_max_s": max(dones),
           "tokens_per_s": sum(r[2] for r in results) / max(dones),
           "last_over_alone": max(dones) / alone, "median_over_alone": statistics.median(dones) / alone}
    print(f"{name:<12}{len(results):>4} clients  first token p50 {row['first_token_p50_s']:6.2f} s  "
          f"answer p50 {row['answer_p50_s']:6.2f} s  max {row['answer_max_s']:6.2f} s  "
          f"{row['tokens_per_s']:6.1f} tokens/s  last/alone {row['last_over_alone']:5.2f}x  "
          f"median/alone {row['median_over_alone']:5.2f}x", flush=True)
    return row


def main() -> None:
    from assistant.config import Settings
    from assistant.models import get_model
    from assistant.models.bench import ANSWER_OPTIONS, course_prompts
    from assistant.models.options import parse_options

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--clients", type=int, nargs="+", default=[8])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if any(not 1 <= n <= 64 for n in args.clients) or not 1 <= args.new_tokens <= 128:
        parser.error("1-64 clients and 1-128 new tokens")
    settings = Settings()
    batched = get_model(args.model, settings.cache_dir, device=args.device, precision=args.precision)
    serial = get_model(args.model, settings.cache_dir, device=args.device, precision=args.precision)
    serial.max_batch = 1
    serial._loaded, serial._lock = batched.load(), batched._lock  # same weights, own queue
    loaded = batched.load()
    # fixed length: every answer costs the same number of decode steps both ways
    opts = parse_options({"stop": ANSWER_OPTIONS["stop"], "max_new_tokens": args.new_tokens,
                          "min_new_tokens": args.new_tokens, "no_repeat_ngram_size": 4})
    prompts = [batched.render(m) for m in course_prompts(max(args.clients))]
    ask_all(batched, prompts[:2], opts)  # warm-up
    alone = min(ask_all(serial, prompts[:1], opts)[0][1] for _ in range(2))
    print(f"{args.model} on {loaded.device} ({loaded.precision}), {args.new_tokens} tokens per "
          f"answer; one answer alone: {alone:.2f} s", flush=True)
    rows = []
    for n in args.clients:
        rows.append(summary("serialised", ask_all(serial, prompts[:n], opts), alone))
        rows.append(summary("batched", ask_all(batched, prompts[:n], opts), alone))
        sooner = rows[-2]["answer_max_s"] / rows[-1]["answer_max_s"]
        gain = rows[-1]["tokens_per_s"] / rows[-2]["tokens_per_s"]
        print(f"  batched vs serialised: last answer {sooner:.2f}x sooner, throughput {gain:.2f}x",
              flush=True)
    if args.json:
        print(json.dumps({"alone_s": alone, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
