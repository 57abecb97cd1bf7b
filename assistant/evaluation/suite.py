"""Suite files: what to evaluate, shaped like promptfoo's (YAML, validated on load).

    description: Shipped templates on the course questions
    datasets: [../datasets/course_qa.jsonl]      # relative to the suite file
    templates: [default, zero-shot]
    models: [smollm2-135m-instruct]
    retrieval: {k: [4], mode: [hybrid]}          # each a list of settings to compare
    metrics:
      - key_facts
      - {name: token_f1, threshold: 0.4}
    fail_under: {key_facts: 0.2}                  # a cell's mean below this fails the run
    repeats: 1
    seed: 0
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import InputError
from assistant.evaluation.metrics import METRICS
from assistant.files import read_text, yaml_problem

MAX_SUITE_BYTES = 1_000_000

DEFAULT_METRICS = ["key_facts", "lead_key_facts", "supported", "token_f1", "rouge_l",
                   "semantic_similarity", "hit_at_k", "mrr", "abstention", "groundedness",
                   "answer_length", "latency"]


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    threshold: float | None = None
    args: dict = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; choose one of: {', '.join(METRICS)}")
        return value


class Retrieval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: list[int] = Field(default_factory=lambda: [4], min_length=1)
    mode: list[str] = Field(default_factory=lambda: ["hybrid"], min_length=1)

    @field_validator("k")
    @classmethod
    def _k(cls, value: list[int]) -> list[int]:
        if any(not 1 <= k <= 50 for k in value):
            raise ValueError("each k is between 1 and 50")
        return list(dict.fromkeys(value))

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: list[str]) -> list[str]:
        if any(m not in ("hybrid", "dense") for m in value):
            raise ValueError("each mode is hybrid or dense")
        return list(dict.fromkeys(value))


class Suite(BaseModel):
    """A validated suite; paths in `datasets` are resolved against the suite's folder."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    datasets: list[Path] = Field(min_length=1)
    templates: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    models: list[str] = Field(default_factory=lambda: ["smollm2-135m-instruct"], min_length=1)
    retrieval: Retrieval = Field(default_factory=Retrieval)
    metrics: list[MetricSpec] = Field(default_factory=lambda: [MetricSpec(name=m) for m in DEFAULT_METRICS])
    fail_under: dict[str, float] = Field(default_factory=dict)
    repeats: int = Field(default=1, ge=1, le=20)
    seed: int = 0
    retrieval_only: bool = False
    limit: int | None = Field(default=None, ge=1)
    filter: list[str] = Field(default_factory=list)
    # local model precision: auto (fastest without a quality loss on the device), fp32, bf16, int4, int8
    precision: str = "auto"

    @field_validator("precision")
    @classmethod
    def _precision(cls, value: str) -> str:
        from assistant.models.precision import check_precision

        try:
            return check_precision(value)
        except Exception as e:
            raise ValueError(str(e)) from None

    @field_validator("metrics", mode="before")
    @classmethod
    def _names(cls, value):
        return [{"name": v} if isinstance(v, str) else v for v in value or []]

    @field_validator("fail_under")
    @classmethod
    def _gated(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [m for m in value if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s): {', '.join(unknown)}")
        return value

    def metric(self, name: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.name == name), None)


def load_suite(path: Path) -> Suite:
    """A suite from YAML; any problem is one InputError naming the file and the field."""
    import yaml

    path = Path(path)
    text = read_text(path, InputError, MAX_SUITE_BYTES)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: invalid YAML ({yaml_problem(e)})") from e
    if not isinstance(data, dict):
        raise InputError(f"{path}: a suite file must be a YAML mapping")
    suite = make_suite(data, where=str(path))
    suite.datasets = [p if p.is_absolute() else (path.parent / p).resolve() for p in suite.datasets]
    judge = suite.metric("judge")
    if judge and judge.args.get("prompt") and not Path(judge.args["prompt"]).is_absolute():
        judge.args["prompt"] = str((path.parent / judge.args["prompt"]).resolve())
    return suite


def make_suite(data: dict, where: str = "suite") -> Suite:
    try:
        return Suite(**data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'suite'}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors())
        raise InputError(f"{where}: {problems}") from None
