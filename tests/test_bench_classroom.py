"""The classroom bench runs on a random model of the real architecture: what a GPU machine
without weights runs for issue 16's figures (evals/gpu_check.sh), here on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_random_weights_answers_are_text_the_small_tokenizer_can_spell(tmp_path):
    from assistant.models.bench import chat_model
    from assistant.models.options import parse_options

    model, _ = chat_model("smollm2-135m-instruct", tmp_path, True, "cpu", precision="fp32")
    texts = model.generate_texts(["What is attention?", "What is a token?"],
                                 parse_options({"max_new_tokens": 6, "min_new_tokens": 6}))
    # the model's 49,152 ids, the tokenizer's 2,000: only ids it can decode are ever picked
    assert len(texts) == 2 and all(g.text.strip() for g in texts)
    assert model.load().model.config.vocab_size == 49152


def test_bench_classroom_runs_both_ways_on_random_weights(tmp_path):
    env = {**os.environ, "COURSELAB_CACHE": str(tmp_path / "cache"),
           "COURSELAB_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "evals/bench_classroom.py", "--random-weights",
                          "--device", "cpu", "--clients", "2", "--new-tokens", "4",
                          "--ways", "serialised", "continuous", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(run.stdout[run.stdout.index('{\n  "alone_s"'):])
    rows = {row["way"]: row for row in data["rows"]}
    assert set(rows) == {"serialised", "continuous"} and data["alone_s"] > 0
    for row in rows.values():
        assert row["clients"] == 2 and row["tokens_per_s"] > 0
        assert 0 < row["first_token_p50_s"] <= row["answer_p50_s"] <= row["answer_max_s"]
    assert data["engine"]["prefix_hits"] > 0  # the shared system prompt was reused


@pytest.mark.parametrize("args, error", [
    (["--random-weights", "--natural"], "--natural needs real weights"),
    (["--app", "--random-weights"], "--app runs the app's own model"),
    (["--app", "--ways", "padded"], "--app runs the app's own model"),
    (["--clients", "65"], "1-64 clients"),
])
def test_bench_classroom_refuses_what_it_cannot_measure(args, error):
    run = subprocess.run([sys.executable, "evals/bench_classroom.py", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and error in run.stderr
