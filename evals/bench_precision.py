"""Precision variants of SmolLM2-135M on this machine: decode speed and batch invariance.

For each variant: greedy tokens/s at batch 1 (64 new tokens, best of N, HF generate so
that only the weights differ), the first token's argmax agreement with fp32 on course
prompts, and whether a prompt's logits are the same alone and inside a padded batch
(dynamic per-tensor int8 quantises activations over the whole batch, so a neighbour
changes a request's answer). Run: .venv/bin/python evals/bench_precision.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def variants():
    import torch

    from assistant.models.precision import quantize_int8

    def torchao(config_name):
        def build(model):
            import torchao.quantization as q
            from torchao.quantization import quantize_

            quantize_(model, getattr(q, config_name)())
            return model
        return build

    return {
        "fp32": (torch.float32, lambda m: m),
        "bf16": (torch.bfloat16, lambda m: m),
        "int8 torch.ao quantize_dynamic": (torch.float32, quantize_int8),
        "int8 torchao dynamic (per token)": (torch.float32,
                                             torchao("Int8DynamicActivationInt8WeightConfig")),
        "int8 torchao weight-only": (torch.float32, torchao("Int8WeightOnlyConfig")),
        "int8 torchao weight-only bf16": (torch.bfloat16, torchao("Int8WeightOnlyConfig")),
    }


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.config import Settings
    from assistant.models.smollm2 import converted_folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--only", nargs="*", help="variant names to run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = converted_folder(Settings().cache_dir)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    questions = ["What vocabulary size does BERT use?", "What is self-attention?",
                 "Who introduced the Transformer architecture, and in which year was it published?"]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                       add_generation_prompt=True) for q in questions]
    batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    one = tok(prompts[:1], return_tensors="pt", add_special_tokens=False)
    rows, reference = [], None
    for name, (dtype, build) in variants().items():
        if args.only and name not in args.only:
            continue
        try:
            start = time.perf_counter()
            model = build(AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval())
            load = time.perf_counter() - start
            with torch.inference_mode():
                alone = model(**one).logits[0, -1].float()
                together = model(**batch).logits[0, -1].float()
                model.generate(**one, max_new_tokens=4, do_sample=False)
                best = float("inf")
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    model.generate(**one, max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                                   do_sample=False, pad_token_id=tok.pad_token_id)
                    best = min(best, time.perf_counter() - t)
        except Exception as e:  # a backend that does not run on this CPU is a finding too
            rows.append({"variant": name, "error": f"{type(e).__name__}: {e}"[:200]})
            print(f"{name:<36} failed: {rows[-1]['error']}", flush=True)
            continue
        if reference is None:
            reference = alone
        row = {"variant": name, "tokens_per_s": round(args.tokens / best, 1),
               "load_s": round(load, 2),
               "batch_max_abs_diff": float((alone - together).abs().max()),
               "same_first_token_as_fp32": bool(alone.argmax() == reference.argmax())}
        rows.append(row)
        print(f"{name:<36}{row['tokens_per_s']:7.1f} tokens/s  load {row['load_s']:5.2f} s  "
              f"alone vs batched max |diff| {row['batch_max_abs_diff']:.2e}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
