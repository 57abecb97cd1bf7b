"""Where courselab keeps its data, and the defaults every command starts from.

Paths come from environment variables when set (COURSELAB_HOME, COURSELAB_CACHE,
COURSELAB_CORPUS, ...), else from the user's data and cache folders.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_TEMPLATE = "default"
MAX_QUESTION_CHARS = 1000


def data_home() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("COURSELAB_HOME") or user_data_dir("courselab"))


def _cache_home() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("COURSELAB_CACHE") or user_cache_dir("courselab"))


class Settings(BaseModel):
    """Run-time settings; unknown keys are an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")

    corpus_dir: Path = Field(default_factory=lambda: Path(
        os.environ.get("COURSELAB_CORPUS") or PROJECT_ROOT / "corpus"))
    index_dir: Path = Field(default_factory=lambda: Path(
        os.environ.get("COURSELAB_INDEX") or data_home() / "index"))
    cache_dir: Path = Field(default_factory=_cache_home)
    prompts_dir: Path = Field(default_factory=lambda: Path(
        os.environ.get("COURSELAB_PROMPTS") or PROJECT_ROOT / "prompts"))
    feedback_path: Path = Field(default_factory=lambda: Path(
        os.environ.get("COURSELAB_FEEDBACK") or data_home() / "feedback.jsonl"))
    runs_dir: Path = Field(default_factory=lambda: Path(os.environ.get("COURSELAB_RUNS") or "runs"))
    embedder: str = Field(default_factory=lambda: os.environ.get(
        "COURSELAB_EMBEDDER", DEFAULT_EMBEDDER))
    model: str = Field(default_factory=lambda: os.environ.get("COURSELAB_MODEL", DEFAULT_MODEL))
    chroma_url: str | None = Field(default_factory=lambda: os.environ.get("COURSELAB_CHROMA_URL"))
    device: str | None = Field(default_factory=lambda: os.environ.get("COURSELAB_DEVICE"))
    concurrency: int = Field(default_factory=lambda: int(os.environ.get("COURSELAB_CONCURRENCY", 4)),
                             ge=1, le=256)  # requests in flight to an openai: server
    collection: str = "course"
    k: int = Field(default=4, ge=1, le=50)
    retrieval_mode: str = Field(default="hybrid", pattern="^(hybrid|dense)$")
    # Calibrated on evals/datasets/course_qa.jsonl by evals/calibrate_threshold.py:
    # below this cosine similarity of the best course sentence, the course does not cover it.
    min_score: float = Field(default=0.2, ge=-1.0, le=1.0)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", value):
            raise ValueError("choose cpu, cuda, cuda:N or mps")
        return value

    @field_validator("chroma_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"https?://[^/\s:]+(:\d+)?/?", value):
            raise ValueError("expected http://HOST:PORT")
        return value
