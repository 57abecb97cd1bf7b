"""Question sets in JSONL or CSV with ragas' field names, validated line by line.

Rows: {"id", "user_input", "reference" (null when the course has no answer),
"reference_contexts", "metadata"}. The first bad line is named with what is wrong.
CSV columns: id, user_input, reference (empty for no reference), reference_contexts (a JSON
list), metadata (a JSON object). The chat's feedback file is a valid JSONL dataset.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import InputError
from assistant.files import read_text


class Row(BaseModel):
    """One question of a dataset."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    user_input: str = Field(min_length=1)
    reference: str | None = None
    reference_contexts: list[str] = Field(default_factory=list)
    metadata: dict = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _known_keys_typed(cls, value: dict) -> dict:
        """The keys the metrics read must have their type; other keys are the author's."""
        facts = value.get("key_facts")
        if facts is not None and not (isinstance(facts, list) and
                                      all(isinstance(f, str) and f.strip() for f in facts)):
            raise ValueError("key_facts must be a list of non-empty strings")
        if not isinstance(value.get("needs_reference", False), bool):
            raise ValueError("needs_reference must be true or false")
        return value

    @property
    def answerable(self) -> bool:
        return self.reference is not None

    @property
    def key_facts(self) -> list[str]:
        return list(self.metadata.get("key_facts") or [])


def read_rows(path: Path, strict: bool = True) -> list[Row]:
    """Rows of a JSONL file; `strict=False` only needs `user_input` (extra keys kept out)."""
    path = Path(path)
    lines = read_text(path, InputError).split("\n")  # not splitlines: U+2028 is JSON text
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if not strict:
                data = {k: data[k] for k in Row.model_fields if k in data}
            rows.append(Row(**data))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{number}: invalid JSON ({e.msg})") from None
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(f"{path}:{number}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        except ValueError as e:
            raise InputError(f"{path}:{number}: {e}") from None
    ids = [r.id for r in rows if r.id is not None]
    if len(ids) != len(set(ids)):
        raise InputError(f"{path}: duplicate ids")
    return rows


def load_dataset(path: Path) -> list[Row]:
    """Rows of a .jsonl or .csv file; the first bad line is named with what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset not found: {path}")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        return read_rows(path)
    raise InputError(f"{path}: a dataset is a .jsonl or .csv file")


def _read_csv(path: Path) -> list[Row]:
    text = read_text(path, InputError)
    try:
        records = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise InputError(f"cannot read {path}: {e}") from e
    rows = []
    for number, record in enumerate(records, 2):  # line 1 is the header
        try:
            rows.append(_csv_row(record))
        except (ValueError, ValidationError) as e:
            detail = e.errors()[0] if isinstance(e, ValidationError) else None
            where = ".".join(map(str, detail["loc"])) + ": " + detail["msg"] if detail else str(e)
            raise InputError(f"{path}:{number}: {where}") from None
    _unique_ids(path, rows)
    return rows


def _csv_row(record: dict) -> Row:
    unknown = set(record) - set(Row.model_fields)
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(sorted(k or '?' for k in unknown))}")
    data: dict = {"id": record.get("id") or None, "user_input": record.get("user_input", ""),
                  "reference": record.get("reference") or None}
    for key, kind in (("reference_contexts", list), ("metadata", dict)):
        raw = (record.get(key) or "").strip()
        if raw:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                raise ValueError(f"{key}: not JSON") from None
            if not isinstance(value, kind):
                raise ValueError(f"{key}: expected a JSON {kind.__name__}")
            data[key] = value
    return Row(**data)


def _unique_ids(path: Path, rows: list[Row]) -> None:
    ids = [r.id for r in rows if r.id is not None]
    if len(ids) != len(set(ids)):
        raise InputError(f"{path}: duplicate ids")


def with_ids(rows: list[Row], prefix: str) -> list[Row]:
    """Rows without an id get a stable one from their position (results are keyed by id)."""
    return [r if r.id else r.model_copy(update={"id": f"{prefix}{n:04d}"})
            for n, r in enumerate(rows, 1)]


def select(rows: list[Row], filters: list[str], limit: int | None) -> list[Row]:
    """Rows whose metadata match every KEY=VALUE filter ('metadata.vote=down'), then the first N."""
    for spec in filters:
        key, sep, value = spec.partition("=")
        if not sep or not key.startswith("metadata.") or len(key) <= len("metadata."):
            raise InputError(f"--filter takes metadata.KEY=VALUE, not {spec!r}")
        field = key.removeprefix("metadata.")
        rows = [r for r in rows if str(r.metadata.get(field)) == value]
    return rows[:limit] if limit else rows
