"""Decode-step attention on the CPU: transformers' sdpa as it is called (no mask when a batch
has no padding) vs courselab's (models/attention.py: an explicit mask for short queries).

Side by side in one process on SmolLM2-135M's shapes (9 query heads over 3 key/value heads,
head size 64, bf16), for batches of 1 and 8 and caches of 221 and 700 tokens; prints the
time per layer call of each, the ratio, and the largest difference between their outputs.

    .venv/bin/python evals/bench_attention.py
"""

from __future__ import annotations

import argparse
import functools
import time

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from assistant.models.attention import attention


class Layer(torch.nn.Module):
    """What the attention functions read from a layer: SmolLM2's grouping."""

    num_key_value_groups = 3
    is_causal = True


def per_call_us(fn, repeat: int) -> float:
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    torch.manual_seed(0)
    layer = Layer().eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16, one query per row")
    with torch.inference_mode():
        for batch, cached in ((1, 221), (1, 700), (8, 221), (8, 700)):
            q = torch.randn(batch, 9, 1, 64, dtype=torch.bfloat16)
            k, v = (torch.randn(batch, 3, cached, 64, dtype=torch.bfloat16) for _ in range(2))
            theirs_fn = functools.partial(sdpa_attention_forward, layer, q, k, v, None, scaling=0.125)
            ours_fn = functools.partial(attention, layer, q, k, v, None, scaling=0.125)
            theirs, ours = per_call_us(theirs_fn, args.repeat), per_call_us(ours_fn, args.repeat)
            diff = (theirs_fn()[0].float() - ours_fn()[0].float()).abs().max()
            print(f"batch {batch:2d}, {cached:4d} cached: sdpa {theirs:7.0f} us   courselab "
                  f"{ours:6.0f} us   {theirs / ours:5.2f}x   max difference {float(diff):.1e}")


if __name__ == "__main__":
    main()
