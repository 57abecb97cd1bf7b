"""Tiny randomly initialised transformers models with tokenizers trained on the spot."""

from __future__ import annotations

from pathlib import Path

from assistant.models.random_init import CHAT_TEMPLATE
from assistant.models.random_init import train_tokenizer as _train

DATA = Path(__file__).resolve().parent / "data"


def train_tokenizer(vocab_size: int = 400, chat_template: str | None = CHAT_TEMPLATE):
    """A tokenizer trained on the test corpus."""
    texts = [p.read_text() for p in sorted((DATA / "corpus").iterdir())]
    return _train(texts, vocab_size, chat_template)


def tiny_llama(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval()


def tiny_t5(tokenizer, seed: int = 0):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=64, d_ff=128, num_layers=2,
                      num_decoder_layers=2, num_heads=4, d_kv=16, feed_forward_proj="gated-gelu",
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    return T5ForConditionalGeneration(config).eval()


def loader_for(model, tokenizer):
    return lambda device, dtype: (model.to(device=device, dtype=dtype), tokenizer)
