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


def q4_1(weight):
    """`weight` as a Q4_1 GGUF file holds it, dequantised: per block of 32 inputs, fp16 min and
    step, q in 0..15 (llama.cpp's quantize_row_q4_1)."""
    import torch

    rows, width = weight.shape
    blocks = weight.detach().float().reshape(rows, width // 32, 32)
    low, high = blocks.amin(-1, keepdim=True), blocks.amax(-1, keepdim=True)
    step = ((high - low) / 15).half().float()
    q = torch.clamp(torch.floor((blocks - low) / torch.where(step > 0, step, 1) + 0.5), 0, 15)
    return (q * step + low.half().float()).reshape(rows, width)


def as_gguf_q4(model, skip: tuple[str, ...] = ("lm_head",)):
    """The model with every nn.Linear but `skip` on Q4_1's 4-bit grid, like the offline GGUFs."""
    import torch

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name not in skip:
                module.weight.copy_(q4_1(module.weight))
    return model
