"""Prompt-lookup drafts in the decode loop (decode.Lookup, _Rows.step): a lone greedy row
checks a few drafted tokens per forward and keeps exactly the tokens greedy decoding picks,
so every answer is the one a token at a time gives (fp32), in fewer forwards."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from tiny_models import loader_for, tiny_llama, train_tokenizer

from assistant.models.decode import Job, Lookup
from assistant.models.hf import HFChatModel
from assistant.models.options import parse_options

QUESTIONS = ["What is attention? Attention mixes tokens. What is attention?",
             "BERT masks tokens. BERT masks tokens. Why?", "Explain positional encodings."]
OPTIONS = [{"max_new_tokens": 24}, {"max_new_tokens": 24, "no_repeat_ngram_size": 3},
           {"max_new_tokens": 20, "min_new_tokens": 20, "stop": ["\n\n"]}]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def engine_for(tokenizer, draft_tokens):
    model = HFChatModel(model_name="tiny", kind="causal", device="cpu", precision="fp32",
                        batch_window_ms=0, loader=loader_for(tiny_llama(tokenizer), tokenizer))
    engine = model.load().engine
    engine.draft_tokens = draft_tokens
    return model, engine


def answers(tokenizer, draft_tokens):
    model, engine = engine_for(tokenizer, draft_tokens)
    out = []
    for question in QUESTIONS:
        for options in OPTIONS:
            opts = parse_options(options)
            job = model._job(model.render([HumanMessage(question)]), opts)
            engine.run([job])
            out.append((job._tokens, job.text, job.finish))
    return out, engine.stats


def test_drafted_tokens_change_no_answer_and_save_forwards(tokenizer):
    plain, plain_stats = answers(tokenizer, 0)
    drafted, stats = answers(tokenizer, 4)
    assert drafted == plain  # token for token, text and finish reason alike
    assert plain_stats["drafted"] == 0
    assert 0 < stats["accepted"] <= stats["drafted"]
    assert stats["steps"] + stats["accepted"] == plain_stats["steps"]  # a forward per kept draft saved


def test_the_lone_row_matches_transformers_generate(tokenizer):
    import torch

    model, engine = engine_for(tokenizer, 4)
    loaded = model.load()
    for question in QUESTIONS:
        text = model.render([HumanMessage(question)])
        ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
        job = Job(ids, parse_options({"max_new_tokens": 16, "min_new_tokens": 16}))
        engine.run([job])
        expected = loaded.model.generate(torch.tensor([ids]), max_new_tokens=16, min_new_tokens=16,
                                         do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
        assert job._tokens == expected[0, len(ids):].tolist()


def test_lookup_drafts_from_the_latest_occurrence_and_prefers_longer_matches():
    look = Lookup(None, [1, 2, 3, 9, 2, 3, 4, 5, 1, 2])
    look.push(3)  # ends in 1 2 3: seen at the start, followed by 9 (2 3 alone: by 4)
    assert look.draft(3) == [9, 2, 3]
    look = Lookup(None, [7, 2, 3, 9, 2, 3, 4, 5])
    look.push(2)
    look.push(3)  # 5 2 3 never occurred; 2 3 last came before 4
    assert look.draft(2) == [4, 5]
    assert Lookup(None, [1, 2, 3]).draft(4) == []  # 2 3 never occurred before


def test_a_sliding_window_model_drafts_too_and_keeps_its_answers(tokenizer):
    """Gemma 3's sliding-window layers forget what leaves the window; with drafts they keep it
    until the rejected tail is cropped. Prompts longer than the window, greedy, fp32."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                              head_dim=16, sliding_window=8, max_position_embeddings=512,
                              layer_types=["sliding_attention", "full_attention"],
                              pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    weights = Gemma3ForCausalLM(config).eval()

    def run(draft_tokens):
        model = HFChatModel(model_name="tiny-gemma", kind="causal", device="cpu",
                            precision="fp32", batch_window_ms=0,
                            loader=loader_for(weights, tokenizer))
        engine = model.load().engine
        engine.draft_tokens = draft_tokens
        out = []
        for question in QUESTIONS:
            job = model._job(model.render([HumanMessage(question)]),
                             parse_options({"max_new_tokens": 24, "min_new_tokens": 24}))
            engine.run([job])
            out.append(job._tokens)
        return out, engine.stats

    plain, _ = run(0)
    drafted, stats = run(4)
    assert drafted == plain
    assert stats["accepted"] > 0
