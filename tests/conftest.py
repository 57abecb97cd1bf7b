"""Shared fixtures: every user path points at tmp_path; fakes for the embedder and model."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

os.environ.update({"ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false",
                   "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                   "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"})


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path, monkeypatch):
    """Index, caches and data of every test live under its tmp_path; no COURSELAB_* setting
    of the environment leaks in, and no model loaded by another test is reused."""
    from assistant.chain.factory import clear_models

    for var in [v for v in os.environ if v.startswith("COURSELAB_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("COURSELAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COURSELAB_CACHE", str(tmp_path / "cache"))
    clear_models()
    yield
    clear_models()


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    """A copy of the small test corpus (tests may edit it)."""
    target = tmp_path / "corpus"
    shutil.copytree(DATA / "corpus", target)
    return target


@pytest.fixture
def settings(tmp_path, corpus_dir):
    from assistant.config import Settings

    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index",
                    cache_dir=tmp_path / "cache", embedder="fake-hash", model="fake")


@pytest.fixture
def fake_env(monkeypatch, corpus_dir, tmp_path):
    """Environment for CLI tests: fake embedder and model, the small corpus."""
    monkeypatch.setenv("COURSELAB_EMBEDDER", "fake-hash")
    monkeypatch.setenv("COURSELAB_MODEL", "fake")
    monkeypatch.setenv("COURSELAB_CORPUS", str(corpus_dir))
    monkeypatch.setenv("COURSELAB_INDEX", str(tmp_path / "index"))
    return corpus_dir


def free_port() -> int:
    """A free TCP port on the loopback interface, for servers the tests start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
