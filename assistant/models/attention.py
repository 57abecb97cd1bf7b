"""Attention for decode steps on the CPU: sdpa, always with a mask for a short query.

Where a batch has no padding, transformers passes sdpa no mask, and torch's CPU kernel for
that case (flash attention for the CPU) is built for long queries: for a decode step (one
query per sequence, 221 cached tokens, SmolLM2's shapes in bf16) it took 142 us per layer at
batch 1 and 943 us at batch 8, against 46 and 187 us with an explicit all-true mask (the
same result; evals/bench_attention.py). Over 30 layers that was 40% of a batch-8 step. So
short queries get the causal mask that None stood for; prompts keep transformers' path.

Registered with transformers' AttentionInterface as "courselab" and used by
`use_for(model)` on CPU models (models/hf.py); GPUs keep sdpa.
"""

from __future__ import annotations

import logging

log = logging.getLogger("courselab")
NAME = "courselab"
SMALL_QUERY = 8  # queries per sequence (a decode step, a draft check) that get the explicit mask


def attention(module, query, key, value, attention_mask, dropout: float = 0.0,
              scaling: float | None = None, **kwargs):
    """transformers' sdpa attention, with an explicit mask for short queries (see above).

    query (b, heads, q, d), key/value (b, kv_heads, n, d); attention_mask (b, 1, q, n) bool
    (True: attend) or None where transformers saw no padding.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    q, n = query.shape[2], key.shape[2]
    if attention_mask is None and q <= SMALL_QUERY:
        # causal within the new queries (all of the cache before them): what None meant
        causal = torch.ones(q, n, dtype=torch.bool, device=query.device).tril(n - q)
        attention_mask = causal[None, None].expand(query.shape[0], 1, q, n)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, **kwargs)


def register() -> None:
    """Make "courselab" a name transformers accepts as an attention implementation."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # the same masks as sdpa gets


def use_for(model) -> bool:
    """Switch a loaded CPU model to the decode-step attention; False where it cannot be."""
    try:
        register()
        model.set_attn_implementation(NAME)
        return True
    except Exception as e:  # an architecture without the attention interface: keep its own
        log.debug("keeping %s attention: %s", type(model).__name__, e)
        return False
