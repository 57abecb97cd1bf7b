"""Numeric precision of a local model: auto, fp32, bf16 or int8.

`auto` picks, per device, the fastest precision measured without a quality loss: bf16
on CUDA; bf16 on a CPU that multiplies bf16 natively (AVX512-BF16 or AMX flags), fp32 on
other CPUs (torch emulates bf16 there, slower than fp32) and elsewhere.

Evidence for bf16 on the CPU (issue 13; evals/suites/course_precision.yaml, the dev split:
59 answerable + 24 unanswerable questions, default template; evals/bench_precision.py
--compare): no significant difference on either bundled model. SmolLM2-135M key_facts
0.271 fp32 vs 0.220 bf16 (McNemar p=0.25, difference 95% CI [-0.119, 0.000]: 3 items lost,
none won), lead_key_facts 0.780 vs 0.780; 59/83 answers identical (39/60 of the generated
ones). Gemma 3 270M key_facts 0.220 vs 0.220, lead_key_facts 0.780 vs 0.763 (p=1.0);
66/83 identical (46/60). Speed on 2 EPYC cores: see the README's speed table.

int8 (torch.ao dynamic quantisation, per-tensor activation scales) is the fastest but
turns greedy answers into loops ("The original sentence is: ...") and makes a request's
answer depend on its batch neighbours (max logit difference 7.5 alone vs batched). On the
course suite (dev split, 30 questions) int8 held every key fact for 0.067 against fp32's
0.300 (9 losses, 2 wins, p=0.035; 0/30 identical answers). Per-channel weight scales,
lm_head left in fp32, or only the MLP quantised, all still change the first
greedy token of 2 of 3 course prompts (evals/bench_precision.py): SmolLM2's activation
outliers defeat per-tensor activation scales. Keeping down_proj and lm_head in fp32 as
well leaves int8 no faster than bf16 (1.57x vs 1.50x fp32) and still diverging early.
torchao's int8 variants were slower than fp32 here. bf16 is not batch-invariant on CPU
kernels (max logit difference 0.3-0.5), so a batched answer can differ slightly from the
same question asked alone; only fp32 gives every request exactly the answer it gets alone
(--precision fp32).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from assistant.errors import OptionsError

log = logging.getLogger("courselab")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
AUTO_CPU = "bf16"  # on CPUs with native bf16; see the docstring: int8 loses quality
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


def resolve(precision: str | None, device: str) -> str:
    """The concrete precision for a device: resolve('auto', 'cuda:0') -> 'bf16'.

    >>> resolve("int8", "cuda"), resolve("auto", "mps")
    ('bf16', 'fp32')
    """
    name = check_precision(precision)
    if device.startswith("cuda"):
        # int8 dynamic quantisation is a CPU kernel; on a GPU bf16 is the fast path
        return "bf16" if name in ("auto", "int8") else name
    if device.startswith("mps"):
        return "fp32" if name in ("auto", "int8") else name
    if name == "auto":
        return AUTO_CPU if cpu_has_bf16() else "fp32"
    return name


def load_dtype(resolved: str):
    """The dtype the weights load in (int8 quantises an fp32 model)."""
    import torch

    return torch.bfloat16 if resolved == "bf16" else torch.float32


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every nn.Linear (weights int8, activations per call).

    torch.ao's `quantize_dynamic` runs fbgemm's VNNI kernels on x86 CPUs (45 tokens/s
    for SmolLM2 on 2 cores against 16 in fp32, issue 13). torchao 0.18 (the maintained
    library) runs on this CPU, but its Int8DynamicActivationInt8Weight was slower than
    fp32 here and Int8WeightOnly slower still, so the deprecated-but-working torch.ao path
    is kept for int8. Its quality cost is in the module docstring: opt-in only.
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


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
        resolved = resolve(precision, device)  # as HFChatModel.load will (hf.pick_device)
    return "" if resolved == "fp32" else f"@{resolved}"
