"""The Course lab's demos on tiny random models: the numbers they must get right.

The tiny models are put in the lab's model cache under the real names, so the CLI and
the demos run as they do with real weights, in well under a second each. MiniLM's
tokenizer is the real one (a file, no weights): the WordPiece splits are its own.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tiny_models import tiny_llama, tiny_t5, train_tokenizer

from assistant.cli import cli
from assistant.errors import InputError
from assistant.explain import (
    DEMOS,
    attention,
    demos_for_section,
    fill_mask,
    finetune,
    lab_link,
    loaded,
    next_token,
    prefill_text,
    tokens,
)
from assistant.explain import architecture as arch


def tiny_bert(seed: int = 0):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    config._attn_implementation = "eager"
    return BertModel(config).eval()


@pytest.fixture(scope="module", autouse=True)
def tiny_lab():
    """Tiny models under the real names, removed afterwards (e2e tests load the real ones)."""
    tok = train_tokenizer()
    for name, seed in ((loaded.CAUSAL, 0), (loaded.GEMMA, 1)):
        model = tiny_llama(tok, seed)
        model.set_attn_implementation("eager")
        loaded.install(name, model, tok, "causal")
    loaded.install(loaded.ENCODER, tiny_bert(), loaded.encoder_tokenizer(), "encoder")
    loaded.install("tiny-t5", tiny_t5(tok), tok, "seq2seq")
    yield
    loaded.clear()


# --- which demo for which section -------------------------------------------------------
BERT = "Popular Modern LLMs > 1. BERT (Bidirectional Encoder Representation from Transformers)"


@pytest.mark.parametrize(("section", "expected"), [
    ("A little bit about Transformers", ["attention"]),
    ("Attention is all you need: Introducing Transformer Architecture", ["attention", "architecture"]),
    (BERT, ["tokens", "fill-mask", "finetune"]),
    (BERT + " > Auto-Encoding Task vs Masked Language Modeling (MLM)", ["tokens", "fill-mask",
                                                                        "finetune"]),
    ("Popular Modern LLMs > 3. T5 (Text to Text Transfer Transformer)", ["architecture"]),
    ("Pre-Training, Transfer Learning and Fine-Tuning", ["finetune"]),
    ("Popular Modern LLMs > 2. GPT (Generative Pre-Trained Transformer)", ["next-token"]),
    ("Applications of GenAI", []),
    ("", []),
])
def test_demos_follow_the_course_figures(section, expected):
    assert [d.key for d in demos_for_section(section)] == expected


def test_every_missing_figure_of_the_course_has_a_demo():
    from assistant.config import PROJECT_ROOT
    from assistant.explain.catalog import figure_sections

    figures = {f for figs in figure_sections(PROJECT_ROOT / "corpus").values() for f in figs}
    assert len(figures) == 9
    assert figures <= {f for d in DEMOS.values() for f in d.figures}


def test_lab_links_carry_the_demo_and_the_words():
    from urllib.parse import parse_qs

    query = parse_qs(lab_link("fill-mask", "How are you doing today?").lstrip("?"))
    assert query == {"lab": ["fill-mask"], "text": ["How are you doing [MASK]?"]}
    assert prefill_text("attention", "  it   <b>x</b> ") == "it <b>x</b>"
    with pytest.raises(KeyError):
        lab_link("nope")


# --- tokens -----------------------------------------------------------------------------
def test_wordpiece_splits_the_course_examples():
    row = tokens.tokenize(loaded.encoder_tokenizer(), "Embeddings are unaffable")
    assert row.pieces == ["em", "##bed", "##ding", "##s", "are", "una", "##ffa", "##ble"]
    assert row.split_words == {"Embeddings": ["em", "##bed", "##ding", "##s"],
                               "unaffable": ["una", "##ffa", "##ble"]}
    assert len(row.ids) == 8 and row.in_split == [True] * 4 + [False] + [True] * 3


def test_tokens_side_by_side_and_a_missing_tokenizer_is_said(monkeypatch):
    real = loaded.available
    monkeypatch.setattr(loaded, "available", lambda n: n != loaded.GEMMA and real(n))
    result = tokens.compare("Embeddings <b>are</b> $x$")
    assert [r.model for r in result.rows] == [loaded.ENCODER, loaded.CAUSAL]
    assert result.skipped == {loaded.GEMMA: "not installed here"}
    fig = result.figure()
    texts = [t.get_text() for t in fig.findobj(match=lambda o: hasattr(o, "get_text"))]
    assert any("bert_oov" in t and "skipped" in t for t in texts)
    assert any(r"\$" in t for t in texts)  # '$' drawn literally, never as mathtext
    assert fig.axes[0].get_xlabel()


@pytest.mark.parametrize(("text", "error"), [("", "give some text"), ("x" * 2001, "up to 2000")])
def test_tokens_refuse_bad_text(text, error):
    with pytest.raises(InputError, match=error):
        tokens.compare(text)


# --- next token -------------------------------------------------------------------------
def test_reshape_is_a_distribution_and_temperature_zero_is_the_argmax():
    import torch

    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 3.0])
    for t, k, p in [(1.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 3, 1.0), (1.0, 0, 0.7), (0.7, 2, 0.9)]:
        probs = next_token.reshape(logits, t, k, p)
        assert abs(float(probs.sum()) - 1) < 1e-6 and float(probs.min()) >= 0
    assert next_token.reshape(logits, 0.0).tolist() == [0, 0, 0, 0, 1]
    assert int((next_token.reshape(logits, 1.0, top_k=2) > 0).sum()) == 2
    raw = torch.softmax(logits, -1)  # [.23, .08, .05, .01, .63]: top-p .7 keeps the two best
    assert (next_token.reshape(logits, 1.0, top_p=0.7) > 0).tolist() == [True, False, False,
                                                                         False, True]
    assert torch.allclose(next_token.reshape(logits, 1.0), raw)
    hot, cold = next_token.reshape(logits, 2.0), next_token.reshape(logits, 0.5)
    assert float(cold.max()) > float(raw.max()) > float(hot.max())


@pytest.mark.parametrize(("t", "k", "p"), [(-0.1, 0, 1.0), (6, 0, 1.0), (1, -1, 1.0), (1, 0, 0.0),
                                           (1, 0, 1.5)])
def test_bad_sampling_settings_are_refused(t, k, p):
    import torch

    with pytest.raises(InputError):
        next_token.reshape(torch.zeros(4), t, k, p)


def test_next_token_on_a_tiny_model_and_branching():
    result = next_token.predict("Attention is", temperature=0.0, shown=5)
    probs = [c.probability for c in result.candidates]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert [c.shaped for c in result.candidates] == [1.0, 0, 0, 0, 0] and result.kept == 1
    longer = next_token.branch("Attention is", result.candidates[0].token_id)
    assert longer.startswith("Attention is") and len(longer) > len("Attention is")
    with pytest.raises(InputError):
        next_token.branch("x", 10**9)
    assert result.figure().axes[0].get_xlabel() == "probability of being the next token"


def test_step_by_step_generation_follows_the_sampler():
    greedy = next_token.steps("Attention is", 3, temperature=0.0)
    assert [r.chosen for r in greedy] == [r.candidates[0].token_id for r in greedy]
    assert all(b.prompt.startswith(a.prompt) for a, b in zip(greedy, greedy[1:], strict=False))
    assert greedy[-1].final.startswith(greedy[-1].prompt) and greedy[1].prompt != greedy[0].prompt
    sampled = [r.chosen for r in next_token.steps("Attention is", 3, temperature=1.5, seed=7)]
    assert sampled == [r.chosen for r in next_token.steps("Attention is", 3, temperature=1.5, seed=7)]
    with pytest.raises(InputError):
        next_token.steps("x", 0)


# --- attention --------------------------------------------------------------------------
def test_causal_attention_rows_sum_to_one_and_nothing_above_the_diagonal():
    import numpy as np

    result = attention.attention(model=loaded.CAUSAL, layer=2, head=3)
    m = np.array(result.matrix)
    assert result.causal and (result.layer, result.head) == (2, 3)
    assert np.allclose(m.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(np.triu(m, k=1), 0)
    assert result.to_dict()["focus_row"] == result.matrix[result.focus]


def test_bidirectional_attention_fills_the_whole_matrix():
    import numpy as np

    result = attention.attention("The animal didn't cross the street because it was too tired")
    m = np.array(result.matrix)
    assert not result.causal and result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert np.allclose(m.sum(axis=1), 1, atol=1e-5) and np.triu(m, k=1).sum() > 0.5
    assert result.tokens[result.focus] == "it"  # the course's word, found by default


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"layer": 3}, "layer must be between 1 and 2"), ({"head": 9}, "head must be between 1 and 2"),
    ({"word": "zebra"}, "not one token"), ({"text": "word " * 80}, "up to 64"),
])
def test_attention_refuses_what_it_cannot_show(kwargs, error):
    with pytest.raises(InputError, match=error):
        attention.attention(**{"text": "the cat sat", **kwargs})


# --- fill-mask --------------------------------------------------------------------------
def test_fill_mask_ranks_candidates_both_ways():
    result = fill_mask.fill("How are [MASK] doing today?", "you, they, we")
    assert {c.word for c in result.candidates} == {"you", "they", "we"}
    for key in ("left_share", "sentence_share"):
        assert abs(sum(getattr(c, key) for c in result.candidates) - 1) < 1e-6
    # the whole sentence adds the words after the blank: never more likely than the word alone
    assert all(c.sentence_logprob <= c.left_logprob + 1e-6 for c in result.candidates)
    shares = [c.sentence_share for c in result.candidates]
    assert shares == sorted(shares, reverse=True)
    assert "masked-LM head" in result.to_dict()["method"]


@pytest.mark.parametrize(("text", "words", "error"), [
    ("no blank here", None, "exactly one"), ("[MASK] and [MASK]", None, "exactly one"),
    ("How are [MASK]?", "you, <script>", "short word"),
    ("How are [MASK]?", ",".join("abcdefghijklmnopqrstuvwxyzABCDEF"), "at most"),
])
def test_fill_mask_refuses_bad_input(text, words, error):
    with pytest.raises(InputError, match=error):
        fill_mask.fill(text, words)


# --- architecture -----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "kind", "stacks"), [
    (loaded.CAUSAL, "causal", {"decoder": 2}), (loaded.ENCODER, "encoder", {"encoder": 2}),
    ("tiny-t5", "seq2seq", {"encoder": 2, "decoder": 2}),
])
def test_parameters_per_part_add_up_to_the_model(name, kind, stacks):
    a = arch.describe(name)
    assert (a.kind, a.layers) == (kind, stacks)
    assert sum(a.parts.values()) == a.total == loaded.get(name).model.num_parameters()
    assert all(n > 0 for n in a.parts.values())
    if kind == "seq2seq":
        assert a.parts["decoder: cross-attention"] > 0


def test_the_random_t5_has_flan_t5_base_shape():
    a = arch.describe("t5")
    assert a.total == 247_577_856 == sum(a.parts.values())  # google/flan-t5-base's count
    assert (a.layers, a.heads, a.hidden, a.feed_forward, a.vocabulary) == (
        {"encoder": 12, "decoder": 12}, 12, 768, 2048, 32128)
    fig = a.figure()
    assert fig.axes[1].get_xlabel() == "parameters (millions)"


# --- fine-tuning ------------------------------------------------------------------------
def fake_embed(texts):
    """Deterministic stand-in vectors (hashed words), so no encoder is needed."""
    import numpy as np

    from assistant.retrieval.embeddings import HashEmbedder

    return np.asarray(HashEmbedder(64).embed_documents(texts), dtype=np.float32)


def test_the_shipped_set_is_labelled_and_held_out():
    rows = finetune.load_examples()
    labels = {r.label for r in rows}
    assert len(rows) >= 300 and len(labels) == 4
    assert len({r.text.lower() for r in rows}) == len(rows)  # no duplicates at all
    for name in labels:
        assert sum(r.label == name and r.split == "train" for r in rows) >= 80
        assert sum(r.label == name and r.split == "test" for r in rows) >= 20


def test_finetuning_is_seeded_and_learns():
    first = finetune.finetune(8, sizes=(8, 16), embed=fake_embed)
    again = finetune.finetune(8, sizes=(8, 16), embed=fake_embed)
    assert first.to_dict() == again.to_dict()
    for curve in first.curves.values():
        assert curve["train"][-1] < 0.8 * curve["train"][0]  # the loop lowers the loss
    assert first.sizes == [8, 16] and all(len(a) == 2 for a in first.accuracy.values())
    other = finetune.finetune(8, sizes=(8,), embed=fake_embed, seed=1)
    assert other.to_dict() != first.to_dict()


def test_bag_of_words_knows_only_the_training_words():
    x = finetune.bag_of_words(["attention heads", "heads"], ["attention attention tokens"])
    assert x.tolist() == [[2.0, 0.0]]


def test_a_bad_dataset_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x", "split": "train"}\n{"text": "b"}\n')
    with pytest.raises(InputError, match="bad.jsonl line 2"):
        finetune.load_examples(path)
    with pytest.raises(InputError, match="between 1 and 80"):
        finetune.finetune(81, embed=fake_embed)


# --- embeddings -------------------------------------------------------------------------
def test_pca_keeps_the_widest_spread_first():
    import numpy as np

    from assistant.explain.embeddings import project

    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 6)) * np.array([5, 2, 0.1, 0.1, 0.1, 0.1])
    xy, q, shares = project(points, points[3])
    assert np.allclose(q, xy[3]) and shares[0] > shares[1] > 0 and sum(shares) > 0.95
    assert xy[:, 0].var() > xy[:, 1].var()


def test_the_embedding_memo_follows_the_encoder():
    from assistant.explain import embeddings

    before = embeddings.embed(["a sentence"])[0]
    original = loaded.get(loaded.ENCODER)
    try:
        loaded.install(loaded.ENCODER, tiny_bert(seed=5), original.tokenizer, "encoder")
        assert abs(float(before @ embeddings.embed(["a sentence"])[0])) < 0.999
    finally:
        loaded.install(loaded.ENCODER, original.model, original.tokenizer, "encoder")
    assert float(before @ embeddings.embed(["a sentence"])[0]) > 0.9999


def test_the_question_among_the_sections(corpus_dir):
    from assistant.explain import embeddings

    m = embeddings.embedding_map("What is self-attention?", corpus_dir, k=3)
    cosines = [c for _, c in m.nearest]
    assert len(m.points) == len(m.sections) >= 3 and cosines == sorted(cosines, reverse=True)
    assert {s for s, _ in m.nearest} <= set(m.sections)
    assert "principal component 1" in m.figure().axes[0].get_xlabel()


# --- figures and the command line -------------------------------------------------------
def test_labels_are_literal_and_bounded():
    from assistant.explain.plots import label

    assert label("$\\alpha$") == r"\$\\alpha\$"
    assert label("a\x00b\nc") == "a·b·c" and len(label("x" * 500)) == 40


@pytest.fixture
def run(fake_env):
    def invoke(*args):
        return CliRunner().invoke(cli, ["explain", *args], catch_exceptions=False)

    return invoke


def test_cli_json_and_png(run, tmp_path):
    out = run("tokens", "unaffable", "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["tokenizers"]
    assert rows[0]["pieces"] == ["una", "##ffa", "##ble"] and rows[0]["count"] == 3
    png = tmp_path / "arch.png"
    out = run("architecture", "t5", "--json", "--png", str(png))
    assert json.loads(out.output)["total_parameters"] == 247_577_856
    assert png.read_bytes()[:4] == b"\x89PNG"
    out = run("next-token", "Attention is", "--temperature", "0", "--top-k", "3")
    assert out.exit_code == 0 and "1.000" in out.output
    steps = json.loads(run("next-token", "Attention is", "--steps", "2", "--json").output)
    assert len(steps) == 2 and steps[1]["prompt"].startswith("Attention is")


@pytest.mark.parametrize("args", [
    ("fill-mask", "no blank"), ("attention", "the cat", "--layer", "7"),
    ("architecture", "gpt-9"), ("tokens", "x", "--png", "out.txt"), ("next-token", "x", "--top-p", "2"),
])
def test_cli_user_errors_are_one_line(run, args):
    out = run(*args)
    assert out.exit_code == 2
    assert out.output.strip().splitlines()[-1].lower().startswith("error")
    assert "Traceback" not in out.output
