"""Randomly initialised models of the real architectures, for tests and for benchmarks on
machines without weights (a GPU box has no hub access): same shapes, same speed, no knowledge.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.errors import ModelError

CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant:{% endif %}")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 400,
                    chat_template: str | None = CHAT_TEMPLATE):
    """A byte-level BPE tokenizer trained on `texts` (well under a second for a course)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 pad_token="<pad>", unk_token="<unk>")
    hf.chat_template = chat_template
    return hf


def architecture(name: str, tokenizer):
    """A random model shaped like `name` (SmolLM2-135M or FLAN-T5-base), and its kind."""
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    if name.startswith("smollm2-135m"):
        config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                             num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                             max_position_embeddings=8192, tie_word_embeddings=True,
                             bos_token_id=tokenizer.bos_token_id, **ids)
        return LlamaForCausalLM(config), "causal"
    if name.startswith("flan-t5"):
        config = T5Config(vocab_size=32128, d_model=768, d_ff=2048, num_layers=12,
                          num_decoder_layers=12, num_heads=12, d_kv=64,
                          feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                          decoder_start_token_id=tokenizer.pad_token_id, **ids)
        return T5ForConditionalGeneration(config), "seq2seq"
    raise ModelError(f"no random architecture for {name!r}; choose smollm2-135m-instruct or "
                     "flan-t5-base")
