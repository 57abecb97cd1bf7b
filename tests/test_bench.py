"""`courselab bench decode`: the fp32 anchor and our streaming path in one run, on a tiny model."""

from __future__ import annotations

import json

from click.testing import CliRunner
from tiny_models import tiny_llama, train_tokenizer


def test_bench_decode_json_runs_both_paths_and_gives_the_ratio(tmp_path):
    from assistant.cli.main import cli

    tokenizer = train_tokenizer()
    tiny_llama(tokenizer).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    result = CliRunner().invoke(cli, ["--precision", "fp32", "bench", "decode", "--model",
                                      f"hf:{tmp_path / 'tiny'}", "--prompts", "1",
                                      "--new-tokens", "6", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["precision"] == "fp32" and data["device"] == "cpu"
    assert data["anchor"]["new_tokens"] == 6 and 0 < data["ours"]["new_tokens"] <= 6
    assert data["speedup"] > 0 and data["ours"]["first_token_s"] > 0
    assert 0 <= data["drafts"]["accepted"] <= data["drafts"]["drafted"]


def test_bench_takes_its_own_device_and_a_wrong_one_is_one_clear_error(tmp_path):
    from assistant.cli.main import cli

    tokenizer = train_tokenizer()
    tiny_llama(tokenizer).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    model = f"hf:{tmp_path / 'tiny'}"
    ok = CliRunner().invoke(cli, ["--precision", "fp32", "bench", "generate", "--model", model,
                                  "--device", "cpu", "--prompts", "2", "--new-tokens", "2"])
    assert ok.exit_code == 0, ok.output
    assert "on cpu, 2 prompts" in ok.output and "speed-up:" in ok.output
    bad = CliRunner().invoke(cli, ["bench", "decode", "--model", model, "--device", "tpu",
                                   "--prompts", "1", "--new-tokens", "1"])
    assert bad.exit_code != 0 and "tpu" in bad.output and "Traceback" not in bad.output
