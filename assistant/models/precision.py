"""Numeric precision of a local model: auto, fp32, bf16, int4 or int8.

`auto` picks, per device and model, the fastest precision measured without a quality loss:
bf16 on CUDA; on a CPU that multiplies bf16 natively (AVX512-BF16 or AMX flags) int4 for
SmolLM2 (its GGUF holds every linear in 4 bits: models/int4.py multiplies exactly those
weights) and bf16 for other models; fp32 on other CPUs (torch emulates bf16 there, slower
than fp32) and elsewhere.

Evidence (evals/suites/course_precision.yaml, default template, `--no-cache`;
evals/bench_precision.py --compare against fp32, 30 Nov 2026, decode loop with drafts):
- bf16, dev split (59 answerable + 24 unanswerable): SmolLM2-135M key_facts 0.220 vs 0.271
  (McNemar p=0.25), lead_key_facts 0.780 vs 0.780; Gemma 3 270M 0.220 vs 0.220. Test split
  (31 + 16, the same suite filtered to `metadata.split=test`): SmolLM2 0.355 vs 0.452
  (p=0.25), lead 0.742 vs 0.742; Gemma 0.290 vs 0.323 (p=1.0), lead 0.742 vs 0.742. No
  significant difference.
- int8 weight-only (models/int8.py: int8 weights with a scale per output channel on torch's
  `_weight_int8pack_mm` for decode steps, the same weights dequantised into bf16's matmul
  for prompts, bf16 activations, lm_head kept in bf16), dev split: SmolLM2 0.220 vs 0.271
  (p=0.25), lead 0.814 vs 0.814, 48/83 identical; Gemma 0.254 vs 0.220 (p=0.63). Test
  split: **SmolLM2 0.226 vs 0.452 (p=0.016)**, lead 0.742 vs 0.742; Gemma 0.355 vs 0.323
  (p=1.0). A significant loss of the model's own key facts, so int8 is opt-in: the fastest
  single answer (`courselab --precision int8 bench decode`: 2.6x fp32 `generate`, bf16 1.9x)
  at a cost to SmolLM2's own wording; what the student reads first (the lead) was unchanged.
  It is also slower than bf16 on an eval's batches (the kernel's time grows with the rows:
  test suite generation 31.2 s int8, 16.3 s bf16, 61.6 s fp32).
- int4 (the file's own 4-bit blocks, bf16 matmul inputs, fp32 between the matmuls), dev
  split: SmolLM2 key_facts 0.203 vs 0.271 (p=0.125), lead 0.797 vs 0.814 (p=1.0), 61/83
  identical; Gemma 0.237 vs 0.220 (p=1.0), 73/83 identical. Test split: SmolLM2 0.355 vs
  0.452 (p=0.25, as bf16), lead 0.742 vs 0.742, 31/47 identical (bf16: 29/47); Gemma 0.290
  vs 0.323 (p=1.0), 43/47 identical. First held-out set (evals/suites/
  course_grounded_holdout.yaml, 40 answerable + 20 unanswerable): SmolLM2 0.225 vs 0.225,
  lead 0.600 vs 0.600, 46/60 identical; Gemma 0.225 vs 0.200, 53/60 identical. No
  significant difference. Every variant that is not fp32 loses a few of SmolLM2's own key
  facts on the same dev questions (q015 under both int8 and int4) and wins none: the
  template was chosen on fp32 answers. Speed (SmolLM2): one answer decodes at 2.9x fp32
  `generate` (bf16 1.9x); a decode step for 4 rows takes 38 ms against bf16's 49 ms, for
  16 rows 107-119 ms against 93-95 ms, and a batch's prompts prefill 1.25x slower than in
  bf16 (fp32 between the matmuls), so an eval runs as fast as in bf16 (307 s). Gemma's
  file is mostly 5- and 8-bit (27 of 127 linears are 4-bit), so int4 gains it nothing
  (`--precision int4 bench decode --model gemma3-270m`: 0.96x fp32 vs 2.22x for bf16) and
  auto keeps it bf16.
- Not kept: torch.ao's dynamic quantisation (per-tensor activation scales) turned greedy
  answers into loops (key_facts 0.067 vs 0.300 on 30 dev questions, p=0.035); torchao's
  int8 variants were slower than fp32 here in eager mode.

Neither bf16 nor int8 is batch-invariant on CPU kernels (a bf16 logit moves by 0.3-0.5), so
a batched answer can differ slightly from the same question asked alone; only fp32 gives
every request exactly the answer it gets alone (--precision fp32).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from assistant.errors import OptionsError

log = logging.getLogger("courselab")
PRECISIONS = ("auto", "fp32", "bf16", "int4", "int8")
AUTO_CPU = "bf16"  # on CPUs with native bf16; int8 lost key facts on the test split (docstring)
# Models whose file holds every linear in 4 bits: int4 multiplies exactly those weights,
# faster than bf16 for one answer and small batches (docstring). Gemma 3's file does not (its
# 640-wide rows fall back to 5- and 8-bit blocks: 27 of 127 linears are 4-bit).
AUTO_CPU_BY_MODEL = {"smollm2-135m-instruct": "int4"}
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # /proc/cpuinfo flags of native bf16 matmuls


def check_precision(value: str | None) -> str:
    """A valid precision name ('auto' for None or ''); anything else is a one-line error.

    >>> check_precision("BF16")
    'bf16'
    """
    name = (value or "auto").strip().lower()
    if name not in PRECISIONS:
        raise OptionsError(f"unknown precision {value!r}; choose one of: {', '.join(PRECISIONS)}")
    return name


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them; empty elsewhere (no claim is made)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return set()


@functools.cache
def cpu_has_bf16() -> bool:
    """The CPU multiplies bf16 natively (AVX512-BF16 or AMX on x86).

    Without it torch emulates bf16 matmuls, slower than fp32: such CPUs keep fp32.
    """
    return bool(cpu_flags() & BF16_FLAGS)


def resolve(precision: str | None, device: str, model_name: str | None = None) -> str:
    """The concrete precision for a device (and model): resolve('auto', 'cuda:0') -> 'bf16'.

    >>> resolve("int8", "cuda"), resolve("auto", "mps")
    ('bf16', 'fp32')
    """
    name = check_precision(precision)
    if device.startswith("cuda"):
        # int4 and int8 run CPU kernels; on a GPU bf16 is the fast path
        return "bf16" if name in ("auto", "int4", "int8") else name
    if device.startswith("mps"):
        return "fp32" if name in ("auto", "int4", "int8") else name
    if name == "auto":
        return AUTO_CPU_BY_MODEL.get(model_name or "", AUTO_CPU) if cpu_has_bf16() else "fp32"
    return name


def load_dtype(resolved: str):
    """The dtype the weights load in (int8 quantises a bf16 model's linears; int4 finds the
    GGUF's 4-bit grid in the fp32 weights, which bf16 would have rounded off it)."""
    import torch

    return torch.bfloat16 if resolved in ("bf16", "int8") else torch.float32


def quantize(model: Any, resolved: str) -> Any:
    """The loaded model in its precision's form: int4 and int8 swap linears, others as loaded."""
    if resolved == "int4":
        from assistant.models import int4

        model, packed, kept = int4.quantize(model)
        log.info("int4: %d linears hold the file's 4-bit weights, %d stay bf16", packed, kept)
        return model
    if resolved == "int8":
        return quantize_int8(model)
    return model


def quantize_int8(model: Any) -> Any:
    """int8 weight-only: every nn.Linear the kernel takes holds int8 weights with per-channel
    scales, multiplied on torch's CPU kernel with bf16 activations (models/int8.py).

    Not torch.ao's dynamic quantisation (its per-tensor activation scales broke SmolLM2's
    answers; see the module docstring) nor torchao's tensor subclasses (slower than fp32
    in eager mode here): one plain module per linear calling the aten kernel directly.
    """
    from assistant.models import int8

    return int8.quantize(model)


def cache_tag(model: Any) -> str:
    """What a cached answer of `model` depends on beyond its name and prompt: '@bf16' or '@int8'.

    '' for fp32 (caches written before auto became bf16 hold fp32 answers and stay valid)
    and for models without local weights (fake, extractive, remote). A generation cache
    keyed on name + tag never serves one precision's answer for another.
    """
    precision = getattr(model, "precision", None)
    if not isinstance(precision, str):
        return ""
    loaded = getattr(model, "_loaded", None)
    if loaded is not None:
        resolved = loaded.precision
    else:
        import torch

        device = getattr(model, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
        # as HFChatModel.load will (hf.pick_device)
        resolved = resolve(precision, device, getattr(model, "model_name", None))
    return "" if resolved == "fp32" else f"@{resolved}"
