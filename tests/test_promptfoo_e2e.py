"""The real promptfoo (0.121.20, installed by `make test` into .promptfoo/) and courselab, both ways.

On the shipped config `evals/promptfoo/promptfooconfig.yaml` (course questions, greedy
decoding, deterministic assertions), against a cold `courselab serve-api` on SmolLM2:
promptfoo with concurrency 4 gets no errors; `courselab eval run` on the same file gives
the same pass/fail for every test and provider; promptfoo imports courselab's output JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT, free_port

pytestmark = pytest.mark.e2e
PROMPTFOO = ROOT / ".promptfoo" / "node_modules" / ".bin" / "promptfoo"
CONFIG = ROOT / "evals" / "promptfoo" / "promptfooconfig.yaml"


@pytest.fixture
def env(tmp_path) -> dict:
    return {**os.environ, "COURSELAB_CACHE": str(ROOT / ".cache"),
            "COURSELAB_CORPUS": str(ROOT / "corpus"), "COURSELAB_HOME": str(tmp_path / "home"),
            "COURSELAB_INDEX": str(tmp_path / "index"), "COURSELAB_MODEL": "smollm2-135m-instruct",
            "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
            "PROMPTFOO_DISABLE_SHARING": "1", "PROMPTFOO_CONFIG_DIR": str(tmp_path / "promptfoo"),
            "PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION": "1"}


@pytest.fixture
def server(env, tmp_path):
    """A cold serve-api (no model loaded, no index yet) on a free loopback port."""
    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve-api", "--port",
                                 str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def _promptfoo(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    assert PROMPTFOO.exists(), "run `make promptfoo` (npm install promptfoo@0.121.20 into .promptfoo/)"
    return subprocess.run([str(PROMPTFOO), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_promptfoo_and_courselab_agree_on_the_shipped_config(server, env, tmp_path):
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(CONFIG.read_text().replace("127.0.0.1:8001", f"127.0.0.1:{server}"))

    # (a) promptfoo against the cold server, 4 requests at a time
    theirs = tmp_path / "promptfoo.json"
    run = _promptfoo(["eval", "-c", str(config), "--max-concurrency", "4", "--no-cache",
                      "--no-progress-bar", "--output", str(theirs)], env, tmp_path)
    assert theirs.exists(), run.stdout + run.stderr
    pf = json.loads(theirs.read_text())["results"]
    assert pf["stats"]["errors"] == 0, [r.get("error") for r in pf["results"]]
    assert len(pf["results"]) == 4 * 2

    # (b) courselab on the same file: the same verdict for every test and provider
    ours = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "assistant", "eval", "run", str(config),
                           "--out", str(tmp_path / "run"), "--output", str(ours)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode in (0, 1), done.stderr
    cl = json.loads(ours.read_text())["results"]
    assert cl["stats"]["errors"] == 0

    def verdicts(results):
        return {(r["testIdx"], r["provider"]["label"]): r["success"] for r in results["results"]}

    assert verdicts(cl) == verdicts(pf)
    assert any(verdicts(pf).values()) and not all(verdicts(pf).values())  # a real mix

    # promptfoo loads courselab's output into its own store and viewer
    imported = _promptfoo(["import", str(ours)], env, tmp_path)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "successfully imported" in imported.stdout + imported.stderr
