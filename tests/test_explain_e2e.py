"""The Course lab on the real offline models: MiniLM, SmolLM2-135M (and Gemma 3 when installed).

Numbers, not generated text: WordPiece splits, attention rows and the causal mask,
distributions, parameter counts, and transfer learning beating bag-of-words.
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant.explain import architecture, attention, fill_mask, finetune, loaded, next_token, tokens

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def real_models():
    loaded.clear()  # nothing tiny left from the unit tests
    yield
    loaded.clear()


@pytest.fixture(scope="module")
def cache_dir():
    from assistant.config import PROJECT_ROOT

    return PROJECT_ROOT / ".cache"


def test_real_tokenizers_side_by_side(cache_dir):
    result = tokens.compare("embeddings unaffable", cache_dir=cache_dir)
    bert = result.rows[0]
    assert bert.pieces == ["em", "##bed", "##ding", "##s", "una", "##ffa", "##ble"]
    assert len(loaded.encoder_tokenizer()) == 30522
    names = [r.model for r in result.rows] + list(result.skipped)
    assert names[:2] == [loaded.ENCODER, loaded.CAUSAL] and loaded.GEMMA in names
    assert all(r.split_words for r in result.rows)


@pytest.mark.parametrize(("model", "causal"), [(loaded.ENCODER, False), (loaded.CAUSAL, True)])
def test_real_attention(model, causal, cache_dir):
    result = attention.attention(model=model, cache_dir=cache_dir)
    m = np.array(result.matrix)
    assert np.allclose(m.sum(axis=1), 1, atol=1e-4) and result.causal is causal
    upper = np.triu(m, k=1)
    assert np.allclose(upper, 0) if causal else upper.sum() > 1
    assert result.tokens[result.focus].replace("Ġ", "") == "it"
    assert (result.layers, result.heads) == ((6, 12) if model == loaded.ENCODER else (30, 9))


def test_real_next_token_distribution(cache_dir):
    result = next_token.predict("The capital of France is", temperature=0.0, cache_dir=cache_dir)
    assert [c.shaped for c in result.candidates][:2] == [1.0, 0.0] and result.kept == 1
    assert 0.2 < sum(c.probability for c in result.candidates) <= 1.0 + 1e-6
    logits = next_token.last_logits(loaded.get(loaded.CAUSAL, cache_dir), "Attention is")
    for t, k, p in [(1.0, 0, 1.0), (0.7, 50, 0.9), (1.5, 0, 0.5)]:
        assert abs(float(next_token.reshape(logits, t, k, p).sum()) - 1) < 1e-5


def test_real_fill_mask_uses_both_sides(cache_dir):
    result = fill_mask.fill(cache_dir=cache_dir)
    words = [c.word for c in result.candidates]
    assert "you" in words[:3]  # the course's answer, ranked by the whole sentence
    assert all(c.sentence_logprob <= c.left_logprob + 1e-5 for c in result.candidates)


@pytest.mark.parametrize(("model", "total"), [(loaded.ENCODER, 22_713_216),
                                              (loaded.CAUSAL, 134_515_008)])
def test_real_parameter_counts(model, total, cache_dir):
    a = architecture.describe(model, cache_dir)
    assert a.total == total == sum(a.parts.values())


def test_frozen_minilm_beats_bag_of_words_at_eight_examples():
    result = finetune.finetune(8)
    minilm, words = result.accuracy["frozen MiniLM"], result.accuracy["bag of words"]
    assert result.sizes[0] == 8 and minilm[0] > words[0] + 0.1
    assert minilm[0] > 0.5 and finetune.finetune(8).to_dict() == result.to_dict()  # seeded


def test_gemma_is_a_causal_decoder_too(cache_dir):
    """Gemma 3 270M (installed by `make install`): its <bos>, the causal mask, its parts."""
    result = attention.attention(model=loaded.GEMMA, cache_dir=cache_dir)
    m = np.array(result.matrix)
    assert result.tokens[0] == "<bos>" and result.causal
    assert np.allclose(m.sum(axis=1), 1, atol=1e-4) and np.allclose(np.triu(m, k=1), 0)
    a = architecture.describe(loaded.GEMMA, cache_dir)
    assert a.kind == "causal" and a.total == sum(a.parts.values()) and a.tied_head
    row = tokens.compare("unaffable", (loaded.GEMMA,), cache_dir).rows[0]
    assert row.scheme.startswith("Gemma") and row.split_words
