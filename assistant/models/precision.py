"""Numeric precision of a local model: auto, fp32, bf16 or int8.

`auto` picks, per device, the fastest precision measured without a quality loss:
bf16 on CUDA; fp32 on a CPU and elsewhere. Measured on SmolLM2-135M on this 2-core
CPU (evals/bench_precision.py): int8 dynamic quantisation (torch.ao, per-tensor
activation scales) is the fastest but turns greedy answers into loops ("The original
sentence is: ...") and makes a request's answer depend on its batch neighbours (max
logit difference 7.5 alone vs batched); torchao 0.18's int8 variants were slower than
fp32 here and also batch-dependent. On the course suite (dev split, 30 questions,
default template) int8 answers held every key fact for 0.067 against fp32's 0.300
(paired: 9 losses, 2 wins, Wilcoxon p=0.035; 0/30 identical answers), 7x faster.
bf16 is not batch-invariant on CPU kernels (max logit difference 0.3-0.5); see the
README for its suite figures. Only fp32 gives every request exactly the answer it gets
alone. Both remain one flag away (--precision bf16|int8).
"""

from __future__ import annotations

import logging
from typing import Any

from assistant.errors import OptionsError

log = logging.getLogger("courselab")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
AUTO_CPU = "fp32"  # see the module's docstring before changing it: int8 loses quality


def check_precision(value: str | None) -> str:
    """A valid precision name ('auto' for None or ''); anything else is a one-line error.

    >>> check_precision("BF16")
    'bf16'
    """
    name = (value or "auto").strip().lower()
    if name not in PRECISIONS:
        raise OptionsError(f"unknown precision {value!r}; choose one of: {', '.join(PRECISIONS)}")
    return name


def resolve(precision: str | None, device: str) -> str:
    """The concrete precision for a device: resolve('auto', 'cuda:0') -> 'bf16'.

    >>> resolve("auto", "cpu"), resolve("int8", "cuda")
    ('fp32', 'bf16')
    """
    name = check_precision(precision)
    if device.startswith("cuda"):
        # int8 dynamic quantisation is a CPU kernel; on a GPU bf16 is the fast path
        return "bf16" if name in ("auto", "int8") else name
    if device.startswith("mps"):
        return "fp32" if name in ("auto", "int8") else name
    return AUTO_CPU if name == "auto" else name


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
