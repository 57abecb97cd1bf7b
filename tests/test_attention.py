"""Decode-step attention on the CPU (models/attention.py): sdpa with an explicit mask for
short queries, which must give what transformers' own attention gives."""

from __future__ import annotations

import pytest
from tiny_models import tiny_llama, train_tokenizer

from assistant.models.attention import SMALL_QUERY, attention


class Layer:
    num_key_value_groups = 3
    is_causal = True
    training = False


def reference(query, key, value, mask):
    """Plain attention, written out: grouped heads repeated, causal for the new queries."""
    import torch

    q, n = query.shape[2], key.shape[2]
    key, value = (t.repeat_interleave(3, dim=1) for t in (key, value))
    scores = query.float() @ key.float().transpose(-1, -2) * 0.125
    allowed = torch.ones(q, n, dtype=torch.bool).tril(n - q)[None, None] if mask is None else mask
    scores = scores.masked_fill(~allowed, float("-inf"))
    return (scores.softmax(-1) @ value.float()).transpose(1, 2)


@pytest.mark.parametrize("queries", [1, 3, SMALL_QUERY])
@pytest.mark.parametrize("padded", [False, True])
def test_short_queries_attend_causally_with_or_without_padding(queries, padded):
    import torch

    torch.manual_seed(0)
    q = torch.randn(2, 9, queries, 16)
    k, v = torch.randn(2, 3, 20, 16), torch.randn(2, 3, 20, 16)
    mask = None
    if padded:  # row 0 has 5 padding positions on the left
        mask = torch.ones(20, dtype=torch.bool).expand(2, 1, queries, 20).clone()
        mask &= torch.ones(queries, 20, dtype=torch.bool).tril(20 - queries)
        mask[0, :, :, :5] = False
    got, weights = attention(Layer(), q, k, v, mask, scaling=0.125)
    assert weights is None and got.shape == (2, queries, 9, 16)
    assert torch.allclose(got, reference(q, k, v, mask), atol=1e-5)


def test_a_model_on_it_decodes_exactly_as_on_sdpa():
    import torch

    from assistant.models.attention import use_for

    tokenizer = train_tokenizer()
    ids = torch.tensor([tokenizer("Attention mixes the tokens of a sequence.")["input_ids"]])
    expected = tiny_llama(tokenizer).generate(ids, max_new_tokens=8, do_sample=False,
                                              pad_token_id=tokenizer.pad_token_id)
    model = tiny_llama(tokenizer)
    assert use_for(model) and model.config._attn_implementation == "courselab"
    got = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert torch.equal(got, expected)
