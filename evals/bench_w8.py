"""fp32, bf16 and courselab's int8 (weight-only, assistant/models/int8.py) side by side.

Each nn.Linear of SmolLM2 except lm_head becomes int8 weights with one bf16 scale per
output channel, multiplied by `torch._weight_int8pack_mm` (bf16 activations, no activation
quantisation: what made torch.ao's dynamic int8 lose quality). It prints greedy tokens/s at
batch 1 (HF generate, 48 tokens) for each, in one process, and how many greedy answer
tokens each keeps identical to fp32 on N course prompts.

    .venv/bin/python evals/bench_w8.py [--prompts 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from assistant.config import Settings
    from assistant.models import get_model
    from assistant.models.int8 import quantize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "evals"))
    from bench_precision import _prefix

    from assistant.models.bench import course_prompts

    chat = get_model("smollm2-135m-instruct", Settings().cache_dir, precision="fp32")
    tok = chat.load().tokenizer
    folder = chat.load().model.name_or_path
    roles = {"human": "user", "system": "system"}
    prompts = [tok(tok.apply_chat_template(
        [{"role": roles[m.type], "content": str(m.content)} for m in ms], tokenize=False,
        add_generation_prompt=True), return_tensors="pt") for ms in course_prompts(args.prompts)]
    models = {"fp32": AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(),
              "bf16": AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval(),
              "int8 weight-only, lm_head bf16": quantize(
                  AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval())}
    answers, speed = {}, {}
    with torch.inference_mode():
        for name, model in models.items():
            model.generate(**prompts[0], max_new_tokens=4, do_sample=False)  # warm
            start = time.perf_counter()
            model.generate(**prompts[0], max_new_tokens=48, min_new_tokens=48, do_sample=False)
            speed[name] = 48 / (time.perf_counter() - start)
            outs = [model.generate(**p, max_new_tokens=48, do_sample=False) for p in prompts]
            answers[name] = [o[0, p["input_ids"].shape[1]:].tolist() for o, p in zip(outs, prompts)]
    for name in models:
        same = [_prefix(a, b) for a, b in zip(answers[name], answers["fp32"])]
        whole = sum(a == b for a, b in zip(answers[name], answers["fp32"]))
        print(f"{name:<32} {speed[name]:5.1f} tokens/s ({speed[name] / speed['fp32']:.2f}x fp32); "
              f"answers identical to fp32 {whole}/{len(prompts)}, tokens kept before the first "
              f"difference {same}")


if __name__ == "__main__":
    main()
