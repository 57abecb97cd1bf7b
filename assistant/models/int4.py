"""The GGUF's own 4-bit weights, kept in 4 bits: torch's CPU kernel `_weight_int4pack_mm_for_cpu`.

The offline models come from GGUF files (SmolLM2: Q4_1 in every linear; Gemma 3: Q4_K in the
27 linears whose rows allow it, 5- and 8-bit blocks elsewhere). Their "fp32" weights are
those 4-bit values dequantised: in every block of 32 inputs of a row, a weight is
`zero + step * q` with q in 0..15. This module finds that grid again in each
nn.Linear and stores q in 4 bits with the block's step and zero, so decoding reads a quarter
of bf16's bytes while multiplying the weights the model file holds, not new approximations of
them (int8 per channel rounds them once more: what lost SmolLM2's key facts on the test split).
A linear whose weights are not on such a grid (a Q6_K or fp16 tensor, a model from the hub)
stays bf16: this precision never quantises anything the file did not. The packed layers are
cached next to the converted safetensors, so only the first load packs (SmolLM2: 6.0 s, then
3.9 s, as fp32's load).

Only the matmuls are bf16: their inputs are rounded to bf16 (the kernels take nothing else
fast), their outputs come back in fp32, and everything between them (the residual stream,
norms, attention and its cache, softmax) stays fp32. A whole-bf16 model rounds the residual
stream at every layer; on six course prompts SmolLM2's largest logit error against fp32 was
1.20 for bf16, 1.59 for int4 in a bf16 model and 0.79 this way (at 6% of the speed).
What is not exact besides: the kernel takes the step and zero in bf16 (8 bits of mantissa),
so a weight moves by at most ~0.4% of its block's step and zero, as bf16 moves each weight.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger("courselab")

GROUP = 32  # inputs per block: Q4_0, Q4_1 and Q4_K's sub-blocks all hold 32 weights
LEVELS = 16
# A block is on a grid when every weight is within this share of a step of its grid point
# (a dequantised GGUF block is within float32 rounding, ~1e-6 of a step).
TOLERANCE = 1e-3
SAMPLE = 64  # rows checked first: most tensors off the grid show it there
# The kernel packs output channels 16 at a time (torch 2.13: "expect N to be dividable by
# 16"): a linear with another number of outputs stays bf16.
OUT_ALIGN = 16
# The kernel is a loop over rows, like the int8 one (models/int8.py): prompts (prefill) and
# batches of at least this many rows multiply the same weights dequantised into bf16 instead.
DENSE_ROWS = 32
# The packed layers are cached next to the converted safetensors, keyed by those files, torch's
# version (the packed layout is torch's own) and this format: the second load reads them.
CACHE_NAME = "int4.safetensors"
CACHE_FORMAT = "1"
BUFFERS = ("packed", "scales", "dense", "bias")


def grid(weight: torch.Tensor, group: int = GROUP) -> tuple[torch.Tensor, ...] | None:
    """(q, step, zero) with weight == zero + step * q per block of `group` inputs, or None.

    q: uint8 [out, in] in 0..15; step, zero: float32 [out, in // group]. None when the width
    is not a multiple of `group` or a block needs more than 16 levels or is off its grid.

    >>> w = torch.tensor([[0.5, 0.75, 1.0, 0.5], [-1.0, -1.0, -1.0, -1.0]])
    >>> q, step, zero = grid(w, group=4)
    >>> q.tolist(), step.tolist(), zero.tolist()
    ([[0, 1, 2, 0], [0, 0, 0, 0]], [[0.25], [1.0]], [[0.5], [-1.0]])
    >>> grid(torch.tensor([[0.0, 0.1, 0.25, 1.0]]), group=4) is None  # 0.25 is off the 0.1 grid
    True
    """
    rows, width = weight.shape
    if width % group:
        return None
    if rows > SAMPLE and grid(weight[:SAMPLE], group) is None:  # an 8-bit lm_head: no full sort
        return None
    blocks = weight.detach().float().reshape(rows, width // group, group)
    zero = blocks.amin(dim=-1)
    # Q4_1 puts a block's min and max on levels 0 and 15: one pass finds its step. Q4_K's
    # blocks may use fewer levels: their step is the smallest gap between sorted weights.
    found = _fit(blocks, zero, (blocks.amax(dim=-1) - zero) / (LEVELS - 1))
    if found is None:
        gaps = blocks.sort(dim=-1).values.diff(dim=-1)
        found = _fit(blocks, zero, torch.where(gaps > 0, gaps, torch.inf).amin(dim=-1))
    if found is None:
        return None
    q, step = found
    return q.to(torch.uint8).reshape(rows, width), step, zero


def _fit(blocks: torch.Tensor, zero: torch.Tensor, step: torch.Tensor):
    """(q, step) when every block is zero + step * q with q in 0..15, else None."""
    step = torch.where((step > 0) & torch.isfinite(step), step, torch.ones_like(step))
    levels = (blocks - zero[..., None]).div_(step[..., None])  # in steps: on the grid, whole
    q = levels.round()
    if q.max() >= LEVELS or levels.sub_(q).abs_().max() > TOLERANCE:
        return None
    return q, step


class Int4Linear(torch.nn.Module):
    """y = x W^T (+ b), W held as 4-bit q with a bf16 step and zero per block of 32 inputs."""

    def __init__(self, in_features: int, out_features: int, packed: torch.Tensor,
                 scales: torch.Tensor, dense: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("packed", packed)
        self.register_buffer("scales", scales)
        self.register_buffer("dense", dense)
        self.register_buffer("bias", bias)

    @classmethod
    def from_grid(cls, linear: torch.nn.Linear, found: tuple[torch.Tensor, ...]) -> Int4Linear:
        q, step, zero = found
        # the kernel's block: w = (q - 8) * scale + mid, so mid is the block's middle level
        scale, mid = step.to(torch.bfloat16), (zero + 8 * step).to(torch.bfloat16)
        out, width = linear.out_features, linear.in_features
        dense = (q.float() - 8).reshape(out, -1, GROUP) * scale.float()[..., None]
        return cls(width, out, torch._convert_weight_to_int4pack_for_cpu(q.int(), 1),
                   torch.stack([scale.T, mid.T], dim=-1).contiguous(),
                   (dense + mid.float()[..., None]).reshape(out, width).to(torch.bfloat16),
                   None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        if flat.shape[0] >= DENSE_ROWS:
            y = torch.nn.functional.linear(flat, self.dense)
        else:
            y = torch._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP, self.scales)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


class Bf16Linear(torch.nn.Module):
    """A linear off the grid: bf16 weights and matmul inside a model that stays fp32."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None
                             else linear.bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Subtle: 2-D, rows contiguous. A prefill's last position ([1, 1, d] cut from [1, n, d])
        # keeps the long row stride, and torch 2.13's bf16 linear then copies the whole weight
        # into a batched matmul: 60 ms for SmolLM2's lm_head instead of 3.5 ms.
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        y = torch.nn.functional.linear(flat, self.weight, self.bias)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


def quantize(model: torch.nn.Module, cache: bool = True) -> tuple[torch.nn.Module, int, int]:
    """Swap each nn.Linear whose weights sit on a 4-bit grid for an Int4Linear, and every
    other one for a Bf16Linear, in place; the rest of the model stays as it is (fp32).

    The model must hold its weights as loaded (fp32): bf16 would have rounded them off the
    grid. With `cache`, a model loaded from a safetensors folder keeps its packed layers in
    that folder (CACHE_NAME) and later loads read them instead of packing again.
    Returns (the model; linears packed; linears kept in bf16).
    """
    path = cache_path(model) if cache else None
    key = cache_key(path.parent) if path else ""
    linears = {f"{prefix}.{name}" if prefix else name: (module, name, child)
               for prefix, module in model.named_modules()
               for name, child in module.named_children() if isinstance(child, torch.nn.Linear)}
    stored = read_cache(path, key) if path else None
    if stored is not None and not all(n in linears and _fits(stored[n], linears[n][2])
                                      for n in stored):
        stored = None  # layers this model does not have, or not its shapes: pack again
    layers: dict[str, Int4Linear] = {}
    for name, (module, child_name, child) in linears.items():
        layer = _int4(child, stored.get(name) if stored is not None else None, stored is None)
        setattr(module, child_name, layer if layer is not None else Bf16Linear(child))
        if layer is not None:
            layers[name] = layer
    if path and stored is None:
        write_cache(path, key, layers)
    return model, len(layers), len(linears) - len(layers)


def _int4(linear: torch.nn.Linear, buffers: dict | None, pack: bool) -> Int4Linear | None:
    """The linear in 4 bits, from its cached buffers or (when `pack`) its grid; None when it
    stays bf16."""
    if buffers is not None:
        return Int4Linear(linear.in_features, linear.out_features, **buffers)
    found = (grid(linear.weight) if pack and linear.weight.dtype == torch.float32
             and linear.out_features % OUT_ALIGN == 0 else None)
    return None if found is None else Int4Linear.from_grid(linear, found)


def _fits(buffers: dict[str, torch.Tensor], linear: torch.nn.Linear) -> bool:
    """Cached buffers of the linear's shape (a cache is outside data: checked before use)."""
    out, width = linear.out_features, linear.in_features
    bias = buffers.get("bias")
    return (buffers["dense"].shape == (out, width) and buffers["packed"].shape[0] == out
            and buffers["scales"].shape == (width // GROUP, out, 2)
            and (bias is None) == (linear.bias is None))


def cache_path(model: torch.nn.Module) -> Path | None:
    """Where the packed layers of a model loaded from a local safetensors folder are kept."""
    folder = Path(str(getattr(model, "name_or_path", "") or ""))
    if not str(folder) or not folder.is_dir():
        return None
    return folder / CACHE_NAME if _weight_files(folder) else None


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.safetensors") if p.name != CACHE_NAME)


def cache_key(folder: Path) -> str:
    """What the packed layers depend on: the weight files, torch's version, this format."""
    files = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in _weight_files(folder)]
    return json.dumps({"format": CACHE_FORMAT, "torch": torch.__version__, "weights": files})


def read_cache(path: Path, key: str) -> dict[str, dict[str, torch.Tensor]] | None:
    """{layer name: its buffers} from a cache written under `key`; None when absent, stale
    or unreadable (the layers are then packed again and the cache rewritten)."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") != key:
                return None
            stored: dict[str, dict[str, torch.Tensor]] = {}
            for name in f.keys():  # noqa: SIM118 (safe_open is no dict: it has keys(), no iteration)
                layer, _, buffer = name.rpartition(".")
                stored.setdefault(layer, {})[buffer] = f.get_tensor(name)
    except Exception as e:  # a torn or foreign file: pack again
        log.warning("int4 cache %s unreadable (%s); packing again", path, e)
        return None
    if any(set(b) - set(BUFFERS) or not {"packed", "scales", "dense"} <= set(b)
           for b in stored.values()):
        return None
    return stored


def write_cache(path: Path, key: str, layers: dict[str, Int4Linear]) -> None:
    """The packed layers, written atomically (a reader sees the old file or the new one)."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{b}": getattr(layer, b).contiguous()
               for name, layer in layers.items() for b in BUFFERS if getattr(layer, b) is not None}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"key": key})
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache: pack at every load
        log.warning("int4 cache %s not written (%s)", path, e)
        tmp.unlink(missing_ok=True)
