"""Settings: one pydantic-settings object, each field from a keyword, else COURSELAB_*, else default."""

from __future__ import annotations

import pytest
from conftest import ROOT
from pydantic import ValidationError

from assistant.config import Settings, env_table


def test_environment_then_defaults_and_keywords_win(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSELAB_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("COURSELAB_MODEL", "extractive")
    s = Settings()
    assert s.model == "extractive"
    assert s.index_dir == tmp_path / "h" / "index" and s.feedback_path == tmp_path / "h" / "feedback.jsonl"
    assert Settings(model="fake").model == "fake"


@pytest.mark.parametrize("values", [{"bogus": 1}, {"device": "tpu"}, {"precision": "fp8"},
                                    {"chroma_url": "ftp://x"}, {"k": 0}, {"max_batch": 0},
                                    {"batch_window_ms": -1}, {"max_queue": 0}])
def test_bad_settings_are_errors(values):
    with pytest.raises(ValidationError):
        Settings(**values)


def test_no_courselab_variable_of_the_outer_environment_leaks_into_a_test():
    import os

    assert set(v for v in os.environ if v.startswith("COURSELAB_")) == {"COURSELAB_HOME", "COURSELAB_CACHE"}


def test_every_setting_from_the_environment_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    missing = [variable for variable, _, _ in env_table() if f"| `{variable}`" not in readme]
    assert not missing, f"document in the README's Configuration table: {missing}"
