"""`compare`: every template x model pair on one retrieval, batched per model."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT
from tiny_models import loader_for, tiny_llama, train_tokenizer

from assistant.lab import compare
from assistant.models.fake import FakeChatModel
from assistant.prompts import find_template

PROMPTS = ROOT / "prompts"


@pytest.fixture
def retriever(settings, monkeypatch):
    from assistant.chain.factory import open_retriever

    retriever = open_retriever(settings)
    calls = []
    original = type(retriever).search_with_vector

    def counted(self, query, k=None):
        calls.append(query)
        return original(self, query, k)

    monkeypatch.setattr(type(retriever), "search_with_vector", counted)
    return retriever, calls


def templates(*names):
    return [find_template(n, PROMPTS) for n in names]


def test_one_result_per_pair_on_one_retrieval(retriever):
    retriever, calls = retriever
    models = {"a": FakeChatModel(model_name="a"), "b": FakeChatModel(model_name="b")}
    result = compare(retriever, "What is self-attention?", templates("default", "zero-shot", "citing"),
                     models)
    assert len(calls) == 1
    assert [(c.template, c.model) for c in result.cells] == [
        (t, m) for t in ("default", "zero-shot", "citing") for m in ("a", "b")]
    assert all(c.text and not c.error and c.answer.tokens["input"] > 0 for c in result.cells)
    assert len(models["a"].history) == len(models["b"].history) == 3
    by_name = {(c.template, c.model): c for c in result.cells}
    assert "[1] Attention:" in by_name[("citing", "a")].answer.prompt
    assert "[1]" not in by_name[("zero-shot", "a")].answer.prompt
    assert by_name[("zero-shot", "a")].answer.prompt == by_name[("zero-shot", "b")].answer.prompt


def test_each_model_generates_once_per_group_of_generation_options(retriever, monkeypatch):
    retriever, _ = retriever
    from assistant.models.hf import HFChatModel

    tok = train_tokenizer()
    model = HFChatModel(model_name="tiny", kind="causal", loader=loader_for(tiny_llama(tok), tok),
                        options={"max_new_tokens": 4}, context_window=4096)  # RoPE: no hard limit
    calls = []
    original = HFChatModel.generate_texts

    def spy(self, prompts, opts=None):
        calls.append((len(prompts), opts.max_new_tokens if opts else None))
        return original(self, prompts, opts)

    monkeypatch.setattr(HFChatModel, "generate_texts", spy)
    result = compare(retriever, "What is self-attention?",
                     templates("default", "zero-shot", "chain-of-thought"), {"tiny": model})
    assert not [c.error for c in result.cells if c.error]
    assert sorted(calls) == [(1, 128), (2, 4)]  # chain-of-thought asks for 128 new tokens
    assert [c.answer.timings["batch_size"] for c in result.cells] == [2, 2, 1]


def test_an_uncovered_question_abstains_in_every_cell_without_the_model(retriever):
    retriever, _ = retriever
    model = FakeChatModel()
    result = compare(retriever, "Who won the FIFA World Cup?", templates("default", "citing"),
                     {"fake": model})
    assert result.prepared.abstained and all(c.answer.abstained for c in result.cells)
    assert model.history == []


def test_a_broken_model_fails_only_its_own_cells(retriever):
    retriever, _ = retriever
    from assistant.models.hf import HFChatModel

    def broken(device, dtype):
        raise OSError("no weights here")

    models = {"broken": HFChatModel(model_name="broken", kind="causal", loader=broken),
              "fake": FakeChatModel()}
    result = compare(retriever, "What is self-attention?", templates("default"), models)
    broken_cell, fake_cell = result.cells
    assert "no weights here" in broken_cell.error and not fake_cell.error and fake_cell.text


def test_compare_cli_json(fake_env):
    from click.testing import CliRunner

    from assistant.cli import cli

    result = CliRunner().invoke(cli, ["compare", "What is self-attention?", "-t", "default,zero-shot",
                                      "--json"], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and [c["template"] for c in data["cells"]] == ["default", "zero-shot"]
    assert data["sources"][0]["section"] == "Attention"
    table = CliRunner().invoke(cli, ["compare", "What is self-attention?", "-t", "default,citing"])
    assert table.exit_code == 0 and "citing" in table.output and "tokens in/out" in table.output
    bad = CliRunner().invoke(cli, ["compare", "What is self-attention?", "-t", "default,nope"])
    assert bad.exit_code == 2 and "unknown template 'nope'" in bad.stderr


def test_a_small_window_drops_passages_and_says_which(retriever, monkeypatch):
    from assistant.chain import assistant as chain
    from assistant.chain.compress import Passage

    retriever, _ = retriever
    # every hit whole, so there are passages to drop (hash embeddings keep only one sentence)
    monkeypatch.setattr(chain, "compress", lambda candidates, scores, hits, n: (
        [Passage(h, (h.text,), h.score) for h in hits], 1.0))
    small = FakeChatModel(model_name="small", context_window=96 + 30)  # words; 96 kept for the answer
    result = compare(retriever, "What is self-attention?", templates("zero-shot"), {"small": small}, k=4)
    cell = result.cells[0]
    assert cell.dropped and set(cell.dropped) <= {h.section for h in result.prepared.hits}
    assert 0 < cell.answer.tokens["input"] <= 30
