"""The registry: built-in names, hf: checkpoints by folder, fast failure when weights are absent."""

from __future__ import annotations

import time

import pytest
from tiny_models import tiny_llama, tiny_t5, train_tokenizer

from assistant.errors import ModelError, UnknownModelError
from assistant.models import MODELS, get_model, get_spec

BUILT_IN = ["flan-t5-small", "flan-t5-base", "flan-t5-large", "smollm2-135m-instruct",
            "smollm2-360m-instruct", "smollm2-1.7b-instruct", "qwen2.5-0.5b-instruct",
            "qwen2.5-1.5b-instruct", "gpt2", "gemma3-270m"]


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    tokenizer = train_tokenizer()
    tiny_llama(tokenizer).save_pretrained(root / "llama")
    tokenizer.save_pretrained(root / "llama")
    plain = train_tokenizer(chat_template=None)
    tiny_t5(plain).save_pretrained(root / "t5")
    plain.save_pretrained(root / "t5")
    return root


def test_built_in_models_are_described():
    for name in BUILT_IN:
        spec = MODELS[name]
        assert spec.kind in ("causal", "seq2seq") and spec.context_window > 0
    assert MODELS["flan-t5-base"].kind == "seq2seq" and MODELS["flan-t5-base"].context_window == 512
    assert not MODELS["gpt2"].chat_template and MODELS["qwen2.5-0.5b-instruct"].chat_template
    assert MODELS["smollm2-135m-instruct"].to_dict()["present"]


def test_gemma_is_a_plain_text_base_model_with_its_terms_shown():
    from click.testing import CliRunner

    from assistant.cli.main import cli

    spec = MODELS["gemma3-270m"]
    assert spec.kind == "causal" and not spec.chat_template and spec.to_dict()["terms"]
    out = CliRunner().invoke(cli, ["models"]).output
    assert "gemma3-270m" in out and "Gemma Terms of Use" in out
    model = get_model("gemma3-270m", "/tmp")  # lazy: nothing converts or loads yet
    assert model.line_answer and model._loaded is None


@pytest.mark.parametrize("folder, kind", [("llama", "causal"), ("t5", "seq2seq")])
def test_hf_folder_kind_comes_from_its_config(saved_models, folder, kind):
    model = get_model(f"hf:{saved_models / folder}", saved_models, {"max_new_tokens": 4})
    assert model.kind == kind
    assert model.invoke("What is attention?").usage_metadata["output_tokens"] <= 4


def test_absent_hub_weights_fail_at_once_in_one_sentence():
    start = time.perf_counter()
    with pytest.raises(ModelError, match="not on this machine.*pass a local folder"):
        get_model("flan-t5-small", "/tmp")
    assert time.perf_counter() - start < 5
    assert not MODELS["flan-t5-small"].available()


@pytest.mark.parametrize("name, error, message", [
    ("hf:", ModelError, "needs a hub id or a folder"),
    ("hf:Qwen/Not-Here", ModelError, "not on this machine"),
    ("llama-9000", UnknownModelError, "hf:<hub id or folder> or openai:"),
    ("openai:qwen", ModelError, "expected openai:<model>@<http"),
    ("openai:qwen@ftp://x", ModelError, "malformed model"),
])
def test_bad_model_names(name, error, message):
    with pytest.raises(error, match=message):
        get_spec(name)


def test_folder_without_weights_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json and model weights"):
        get_spec(f"hf:{tmp_path / 'empty'}")


def test_seq2seq_model_answers_through_the_chain(settings, saved_models):
    """The FLAN-T5 route end to end: plain-text prompt, one generate, a structured answer."""
    from assistant.chain.factory import build_assistant

    assistant = build_assistant(settings, f"hf:{saved_models / 't5'}", options={"max_new_tokens": 6})
    answer = assistant.answer("What percentage of tokens does BERT mask?")
    assert not answer.abstained and answer.sources
    assert "<s>" not in answer.prompt and "15%" in answer.prompt
    assert 0 < answer.tokens["output"] <= 6


def _converted(folder, tag: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_text(tag)
    return folder


def test_a_conversion_another_process_finished_first_is_kept(tmp_path, monkeypatch):
    from assistant.models import gguf

    target = _converted(tmp_path / "m", "theirs")
    assert gguf.publish(_converted(tmp_path / "m.tmp1", "ours"), target) == target
    assert (target / "model.safetensors").read_text() == "theirs"
    assert not (tmp_path / "m.tmp1").exists()

    # the other process finishes between our check and our os.replace
    other = tmp_path / "n"

    def racing_replace(src, dst):
        _converted(other, "theirs")
        raise OSError("Directory not empty")

    monkeypatch.setattr(gguf.os, "replace", racing_replace)
    assert gguf.publish(_converted(tmp_path / "n.tmp1", "ours"), other) == other
    assert (other / "model.safetensors").read_text() == "theirs"
    with pytest.raises(OSError):  # no complete conversion there: the failure is reported
        gguf.publish(_converted(tmp_path / "p.tmp1", "ours"), tmp_path / "p" / "q")


def test_the_gemma_working_folder_is_per_process(tmp_path, monkeypatch):
    import os
    import sys
    import types

    from assistant.models import gemma3, gguf

    seen = []
    fake = types.ModuleType(gemma3.PACKAGE)
    fake.assemble = lambda path, overwrite: seen.append(path)
    monkeypatch.setitem(sys.modules, gemma3.PACKAGE, fake)
    monkeypatch.setattr(gemma3, "weights_present", lambda: True)
    monkeypatch.setattr(gguf, "convert", lambda work, f, target, **kw: target)
    gemma3.converted_folder(tmp_path)
    assert str(os.getpid()) in seen[0].parent.name
