"""Precision variants of SmolLM2-135M on this machine: speed, fidelity, and their quality.

Speed (default): for each variant, greedy tokens/s at batch 1 (64 new tokens, best of N,
HF generate so that only the weights differ), the prefill time of a course prompt (what
the first token waits for), how many of the course prompts' 64 greedy tokens match fp32's
(the common prefix), and whether a prompt's logits are the same alone and inside a padded
batch (dynamic per-tensor int8 quantises activations over the whole batch, so a neighbour
changes a request's answer). The variants run interleaved, round after round, so a busy
shared machine slows them alike.

Quality (--compare A B): two run folders of evals/suites/course_precision.yaml (the same
suite under two precisions): per model, key_facts and lead_key_facts with McNemar's paired
test and the 95% interval of the difference, the share of identical greedy answers, and
each run's generation time.

Run: .venv/bin/python evals/bench_precision.py [--repeat 2] [--only fp32 bf16]
     .venv/bin/python evals/bench_precision.py --compare runs/fp32 runs/bf16
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _int8(per_channel: bool, keep=lambda name: False):
    """torch.ao dynamic int8 of every nn.Linear whose name `keep` does not exempt."""
    def build(model):
        import warnings

        import torch

        q = torch.ao.quantization
        config = q.per_channel_dynamic_qconfig if per_channel else q.default_dynamic_qconfig
        spec = {name: config for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and not keep(name)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
            return q.quantize_dynamic(model, spec, dtype=torch.qint8)
    return build


def _torchao(config_name):
    def build(model):
        import torchao.quantization as q
        from torchao.quantization import quantize_

        quantize_(model, getattr(q, config_name)())
        return model
    return build


def variants():
    import torch

    from assistant.models.precision import quantize, quantize_int8

    def lm_head(name):
        return name == "lm_head"

    def not_mlp(name):
        return ".mlp." not in name

    def outliers(name):  # down_proj reads the MLP's outlier activations; lm_head is tied
        return name == "lm_head" or name.endswith("down_proj")

    return {
        "fp32": (torch.float32, lambda m: m),
        "bf16": (torch.bfloat16, lambda m: m),
        "int4 (courselab: the GGUF's own 4-bit blocks)": (torch.float32,
                                                          lambda m: quantize(m, "int4")),
        "int8 (courselab: weight-only, lm_head bf16)": (torch.bfloat16, quantize_int8),
        "int8 per-channel": (torch.float32, _int8(True)),
        "int8 per-tensor, lm_head fp32": (torch.float32, _int8(False, lm_head)),
        "int8 per-channel, lm_head fp32": (torch.float32, _int8(True, lm_head)),
        "int8 per-channel, MLP only": (torch.float32, _int8(True, not_mlp)),
        "int8 per-channel, down_proj and lm_head fp32": (torch.float32, _int8(True, outliers)),
        "int8 torchao dynamic (per token)": (torch.float32,
                                             _torchao("Int8DynamicActivationInt8WeightConfig")),
        "int8 torchao weight-only": (torch.float32, _torchao("Int8WeightOnlyConfig")),
    }


def _prompts(tok):
    from assistant.models.bench import course_prompts

    roles = {"human": "user", "system": "system"}
    return [tok.apply_chat_template([{"role": roles[m.type], "content": str(m.content)} for m in ms],
                                    tokenize=False, add_generation_prompt=True)
            for ms in course_prompts(3)]


def _prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def speed(args) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.config import Settings
    from assistant.models.smollm2 import converted_folder

    folder = converted_folder(Settings().cache_dir)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    prompts = _prompts(tok)
    batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    encs = [tok(p, return_tensors="pt", add_special_tokens=False) for p in prompts]
    models, rows = {}, {}
    for name, (dtype, build) in variants().items():
        if args.only and name not in args.only:
            continue
        try:
            start = time.perf_counter()
            models[name] = build(AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval())
            rows[name] = {"variant": name, "load_s": round(time.perf_counter() - start, 2),
                          "decode_s": [], "prefill_s": []}
        except Exception as e:  # a backend that does not run here (not installed) is a finding too
            print(f"{name:<40} failed: {type(e).__name__}: {str(e)[:120]}", flush=True)
    greedy = {}
    with torch.inference_mode():
        for name, model in models.items():
            alone = model(**encs[0]).logits[0, -1].float()
            together = model(**batch).logits[0, -1].float()
            rows[name]["batch_max_abs_diff"] = float((alone - together).abs().max())
            greedy[name] = [model.generate(**e, max_new_tokens=args.tokens, do_sample=False,
                                           pad_token_id=tok.pad_token_id)[0, e["input_ids"].shape[1]:]
                            .tolist() for e in encs]
        for _ in range(args.repeat):  # interleaved rounds: a load spike hits every variant alike
            for name, model in models.items():
                for e in encs:
                    t = time.perf_counter()
                    model(**e, logits_to_keep=1)
                    rows[name]["prefill_s"].append(time.perf_counter() - t)
                t = time.perf_counter()
                model.generate(**encs[0], max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                               do_sample=False, pad_token_id=tok.pad_token_id)
                rows[name]["decode_s"].append(time.perf_counter() - t)
    reference = greedy.get("fp32")
    for name, row in rows.items():
        row["tokens_per_s"] = round(args.tokens / min(row.pop("decode_s")), 1)
        row["prefill_s"] = round(min(row.pop("prefill_s")), 3)
        if reference is not None:
            row["greedy_prefix_vs_fp32"] = [_prefix(a, b) for a, b in zip(greedy[name], reference)]
        print(f"{name:<40}{row['tokens_per_s']:7.1f} tokens/s  prefill {row['prefill_s']:.3f} s  "
              f"load {row['load_s']:5.2f} s  alone vs batched max |diff| "
              f"{row['batch_max_abs_diff']:.2e}  same greedy tokens as fp32: "
              f"{row.get('greedy_prefix_vs_fp32')}", flush=True)
    if "fp32" in rows:
        base = rows["fp32"]["tokens_per_s"]
        print("speed vs fp32: " + ", ".join(f"{n} {r['tokens_per_s'] / base:.2f}x"
                                            for n, r in rows.items()))
    return list(rows.values())


def quality(a_dir: Path, b_dir: Path) -> list[dict]:
    """Per model: paired key_facts / lead_key_facts, identical answers, generation time."""
    from assistant.evaluation.compare_runs import load_run
    from assistant.evaluation.report import per_item
    from assistant.evaluation.stats import compare

    a, b = load_run(a_dir), load_run(b_dir)
    out = []
    for model in dict.fromkeys(r["model"] for r in a if r["template"] != "-"):
        ra = [r for r in a if r["model"] == model]
        rb = [r for r in b if r["model"] == model]
        answers_b = {r["item_id"]: r.get("answer") for r in rb}
        both = [r for r in ra if r["item_id"] in answers_b]
        same = sum((r.get("answer") or "") == (answers_b[r["item_id"]] or "") for r in both)
        made_b = {r["item_id"] for r in rb if (r.get("tokens") or {}).get("output")}
        made = [r for r in both if (r.get("tokens") or {}).get("output") and r["item_id"] in made_b]
        same_made = sum((r.get("answer") or "") == (answers_b[r["item_id"]] or "") for r in made)
        row = {"model": model, "items": len(both), "identical_answers": same,
               "generated_in_both": len(made), "identical_generated": same_made,
               "generation_s": [round(sum(r.get("latency_s") or 0 for r in rows if not r["cached"]), 1)
                                for rows in (ra, rb)]}
        print(f"{model}: {same}/{len(both)} identical answers ({same / max(len(both), 1):.0%}; "
              f"{same_made}/{len(made)} of those both runs generated, not abstained); "
              f"generation {row['generation_s'][0]} s ({a_dir.name}) vs "
              f"{row['generation_s'][1]} s ({b_dir.name})")
        for metric in ("key_facts", "lead_key_facts", "abstention"):
            sa, sb = per_item(ra, metric), per_item(rb, metric)
            if not sa or not sb:
                continue
            c = compare(metric, a_dir.name, b_dir.name, next(iter(sa.values())),
                        next(iter(sb.values())), binary=True)
            if c is None:
                continue
            row[metric] = {"n": c.n, a_dir.name: round(c.mean_a, 3), b_dir.name: round(c.mean_b, 3),
                           "diff": round(c.diff, 3), "ci": [round(x, 3) for x in c.ci],
                           "p": round(c.p_value, 3)}
            print(f"  {metric:<15} {c.mean_a:.3f} vs {c.mean_b:.3f} (n={c.n}, McNemar p={c.p_value:.3f})"
                  f"  {c.verdict}")
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--only", nargs="*", help="variant names to run")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
                        help="two run folders of evals/suites/course_precision.yaml")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = quality(*args.compare) if args.compare else speed(args)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
