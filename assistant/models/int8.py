"""int8 weight-only linears on torch's own CPU kernel (`torch._weight_int8pack_mm`).

Each weight is stored as int8 with one scale per output channel; activations stay bf16
and are never quantised, which is where dynamic int8 lost SmolLM2's answers (its
activation outliers). At batch 1 on a CPU the step is bound by reading weights, so a
quarter of fp32's bytes decodes faster (evals/bench_w8.py: 2.2x fp32 on 2 EPYC cores).
"""

from __future__ import annotations

import torch

# lm_head stays bf16. int8 would read its vocabulary faster at one row (3.7 -> 2.2 ms for
# SmolLM2, 28.6 -> 15.7 ms for Gemma's 262k rows) but the kernel's cost grows with the rows
# (a 5-token draft check: 11 ms), and switching to bf16 for several rows would make a token's
# logits depend on what shares its forward: a draft or a batch could then change an answer.
KEEP: tuple[str, ...] = ("lm_head",)
# Subtle: the kernel crashes the process (a segfault, not an error) when the input width is
# not a multiple of 16 (measured with torch 2.13: 8 and 50 crash; 16, 48, 576 work), so such
# a linear stays in bf16.
ALIGN = 16
# The kernel is a loop of matrix-vector products: its time grows with the rows (0.05 ms for 1
# row of a 576x1536 weight, 2.9 ms for 128), while bf16's matmul is 1.1 ms for 128 even with
# the weight dequantised first. So prompts (prefill) take the dequantised bf16 path, decode
# steps (a row per sequence) the int8 kernel: first token at bf16's speed, decode at int8's.
DENSE_ROWS = 32


class Int8Linear(torch.nn.Module):
    """y = x W^T (+ b) with W int8 and a bf16 scale per output channel."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
        self.register_buffer("weight", torch.round(weight / scale[:, None]).clamp(-127, 127)
                             .to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None
                             else linear.bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        if flat.shape[0] >= DENSE_ROWS:
            y = torch.nn.functional.linear(flat, self.weight.to(torch.bfloat16)
                                           * self.scale[:, None])
        else:
            y = torch._weight_int8pack_mm(flat, self.weight, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


def quantize(model: torch.nn.Module, keep: tuple[str, ...] = KEEP) -> torch.nn.Module:
    """Swap every nn.Linear but `keep` for an Int8Linear, in place; the model runs in bf16."""
    model.to(torch.bfloat16)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if (isinstance(child, torch.nn.Linear) and full not in keep
                    and child.in_features % ALIGN == 0):
                setattr(module, child_name, Int8Linear(child))
    return model
