"""Warm latency of each Course lab demo on the real models (target: <= 2 s each, 2 cores).

    python evals/bench_explain.py [--repeat 3]

Loads every model once (cold times printed apart), then runs each demo `--repeat` times
and reports the best and the median of the numbers alone and of numbers + PNG figure
(what the app does). It also runs the SmolLM2 demos with torch's default thread count
(the baseline) and with the lab's one thread, side by side, and prints the ratio.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import Settings  # noqa: E402
from assistant.explain import (  # noqa: E402
    architecture,
    attention,
    embeddings,
    fill_mask,
    finetune,
    loaded,
    next_token,
    tokens,
)
from assistant.explain.plots import close  # noqa: E402

TARGET_S = 2.0


def demos(settings: Settings) -> dict:
    cache, corpus = settings.cache_dir, settings.corpus_dir
    return {
        "tokens": lambda: tokens.compare("Embeddings are unaffable, aren't they?", cache_dir=cache),
        "next-token": lambda: next_token.predict("The capital of France is", temperature=0.7,
                                                 top_k=50, top_p=0.9, cache_dir=cache),
        "attention (MiniLM)": lambda: attention.attention(model=loaded.ENCODER, cache_dir=cache),
        "attention (SmolLM2)": lambda: attention.attention(model=loaded.CAUSAL, cache_dir=cache),
        "fill-mask": lambda: fill_mask.fill(cache_dir=cache),
        "architecture (SmolLM2)": lambda: architecture.describe(loaded.CAUSAL, cache),
        "architecture (T5)": lambda: architecture.describe(loaded.T5, cache),
        "finetune": lambda: finetune.finetune(32),
        "embeddings": lambda: embeddings.embedding_map("How does attention work?", corpus),
    }


def timed(fn, figure: bool) -> float:
    start = time.perf_counter()
    result = fn()
    if figure:
        fig = result.figure()
        fig.savefig(io.BytesIO(), format="png", dpi=100)
        close(fig)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per demo")
    args = parser.parse_args()
    settings = Settings()
    table = demos(settings)
    print(f"{'demo':<24}{'cold s':>8}{'best s':>8}{'median s':>10}{'+figure s':>11}  ≤ {TARGET_S} s?")
    worst = 0.0
    for name, fn in table.items():
        cold = timed(fn, True)  # loads the model, embeds the sections/sentences, imports matplotlib
        bare = [timed(fn, False) for _ in range(args.repeat)]
        full = [timed(fn, True) for _ in range(args.repeat)]
        worst = max(worst, statistics.median(full))
        ok = "yes" if statistics.median(full) <= TARGET_S else "NO"
        print(f"{name:<24}{cold:>8.2f}{min(bare):>8.2f}{statistics.median(bare):>10.2f}"
              f"{statistics.median(full):>11.2f}  {ok}")
    print(f"slowest warm demo with its figure: {worst:.2f} s")
    compare_threads(table, args.repeat)


def compare_threads(table: dict, repeat: int) -> None:
    """Torch's default threads (baseline) vs the lab's one thread, on the SmolLM2 demos."""
    import torch

    default = torch.get_num_threads()
    names = ["next-token", "attention (SmolLM2)", "fill-mask"]
    times = {}
    for threads in (default, 1):
        loaded.THREADS = threads
        times[threads] = sum(statistics.median([timed(table[n], False) for _ in range(repeat)])
                             for n in names)
        print(f"SmolLM2 demos on {threads} torch thread(s): {times[threads]:.2f} s")
    loaded.THREADS = 1
    print(f"one thread vs {default}: {times[default] / times[1]:.2f}x "
          f"(machine load now: {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())})")


if __name__ == "__main__":
    main()
