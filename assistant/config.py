"""Where courselab keeps its data, and the defaults every command starts from.

One `Settings` object (pydantic-settings): each field can be set by a keyword, else by
its `COURSELAB_*` environment variable (listed in `ENV`), else it takes its default. The
README's "Configuration" table is this list. In a checkout the editable `corpus/` and
`prompts/` folders are the defaults; an installed package falls back to its bundled copies.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_TEMPLATE = "default"
MAX_QUESTION_CHARS = 1000


def default_folder(name: str) -> Path:
    """The checkout's editable `corpus/` or `prompts/`, else the package's bundled copy."""
    checkout = PROJECT_ROOT / name
    if (PROJECT_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return PACKAGE_DIR / "bundled" / name


def _user_dir(kind: str) -> Path:
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("courselab"))


def _env(field: str, variable: str):
    """Accept the field's own name as a keyword and COURSELAB_<VARIABLE> from the environment."""
    return AliasChoices(field, f"COURSELAB_{variable}")


class Settings(BaseSettings):
    """Run-time settings; unknown keywords are an error, not a silent default."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True,
                                      env_prefix="COURSELAB_", case_sensitive=True)

    home: Path = Field(default_factory=lambda: _user_dir("data"), validation_alias=_env("home", "HOME"),
                       description="data folder: the index and the feedback file by default")
    cache_dir: Path = Field(default_factory=lambda: _user_dir("cache"),
                            validation_alias=_env("cache_dir", "CACHE"),
                            description="converted models, the ONNX embedder, the eval cache")
    corpus_dir: Path = Field(default_factory=lambda: default_folder("corpus"),
                             validation_alias=_env("corpus_dir", "CORPUS"),
                             description="folder of .md/.txt course files")
    index_dir: Path = Field(default_factory=lambda data: data["home"] / "index",
                            validation_alias=_env("index_dir", "INDEX"),
                            description="folder of the Chroma index")
    prompts_dir: Path = Field(default_factory=lambda: default_folder("prompts"),
                              validation_alias=_env("prompts_dir", "PROMPTS"),
                              description="folder of prompt templates")
    feedback_path: Path = Field(default_factory=lambda data: data["home"] / "feedback.jsonl",
                                validation_alias=_env("feedback_path", "FEEDBACK"),
                                description="the chat's votes, one JSONL row each")
    runs_dir: Path = Field(Path("runs"), validation_alias=_env("runs_dir", "RUNS"),
                           description="where `eval run` writes and the Evals tab reads runs")
    embedder: str = Field(DEFAULT_EMBEDDER, validation_alias=_env("embedder", "EMBEDDER"),
                          description="sentence-transformers model of the index")
    model: str = Field(DEFAULT_MODEL, validation_alias=_env("model", "MODEL"),
                       description="default model (see `courselab models`)")
    chroma_url: str | None = Field(None, validation_alias=_env("chroma_url", "CHROMA_URL"),
                                   description="a Chroma server instead of the index folder")
    device: str | None = Field(None, validation_alias=_env("device", "DEVICE"),
                               description="cpu, cuda, cuda:N or mps (default: cuda when present)")
    precision: str = Field("auto", validation_alias=_env("precision", "PRECISION"),
                           pattern="^(auto|fp32|bf16|int4|int8)$",
                           description="weights of local models: auto, fp32, bf16, int4 or int8")
    concurrency: int = Field(4, ge=1, le=256, validation_alias=_env("concurrency", "CONCURRENCY"),
                             description="requests in flight to an openai: server")
    # a local model's dynamic batcher (models/scheduler.py): how a class asking at once is served
    batch_window_ms: int = Field(20, ge=0, le=1000,
                                 validation_alias=_env("batch_window_ms", "BATCH_WINDOW_MS"),
                                 description="how long a local model's next batch waits for more questions")
    max_batch: int = Field(64, ge=1, le=1024, validation_alias=_env("max_batch", "MAX_BATCH"),
                           description="most answers a local model decodes together (1: one at a time)")
    max_queue: int = Field(256, ge=1, le=100_000, validation_alias=_env("max_queue", "MAX_QUEUE"),
                           description="questions waiting for a local model before 'busy, try again'")
    collection: str = Field("course", description="Chroma collection name")
    k: int = Field(4, ge=1, le=50, description="passages to retrieve")
    retrieval_mode: str = Field("hybrid", pattern="^(hybrid|dense)$",
                                description="dense vectors fused with BM25, or dense only")
    # Calibrated on evals/datasets/course_qa.jsonl by evals/calibrate_threshold.py:
    # below this cosine similarity of the best course sentence, the course does not cover it.
    min_score: float = Field(0.2, ge=-1.0, le=1.0,
                             description="abstain below this best-sentence similarity")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", value):
            raise ValueError("choose cpu, cuda, cuda:N or mps")
        return value or None

    @field_validator("chroma_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"https?://[^/\s:]+(:\d+)?/?", value):
            raise ValueError("expected http://HOST:PORT")
        return value or None


def env_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting read from the environment (the README's table)."""
    rows = []
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            default = info.default if info.default_factory is None else "(see meaning)"
            rows.append((str(alias.choices[1]), str(default), info.description or ""))
    return rows


def data_home() -> Path:
    """The data folder (COURSELAB_HOME), for files kept beside the index."""
    return Settings().home
