"""Question sets in JSON Lines with ragas' field names, validated line by line.

Rows: {"id", "user_input", "reference" (null when the course has no answer),
"reference_contexts", "metadata"}. The first bad line is named with what is wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError


class Row(BaseModel):
    """One question of a dataset."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    user_input: str = Field(min_length=1)
    reference: str | None = None
    reference_contexts: list[str] = Field(default_factory=list)
    metadata: dict = Field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.reference is not None

    @property
    def key_facts(self) -> list[str]:
        return list(self.metadata.get("key_facts") or [])


def read_rows(path: Path, strict: bool = True) -> list[Row]:
    """Rows of a JSONL file; `strict=False` only needs `user_input` (extra keys kept out)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from e
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


def normalise(text: str) -> str:
    """Lower-case text without markdown marks or extra spaces, for containment checks."""
    return re.sub(r"\s+", " ", re.sub(r"(\*\*|`|__)", "", text)).strip().lower()


def contains_context(chunk_text: str, contexts: list[str]) -> bool:
    """True when the chunk holds one of the reference passages."""
    text = normalise(chunk_text)
    return any(normalise(c) in text for c in contexts)


def has_key_facts(answer: str, facts: list[str]) -> bool:
    """Every key fact (alternatives split by '|') occurs in the answer, case-insensitively.

    >>> has_key_facts("BERT masks 15% of words", ["15%|15 percent", "mask"])
    True
    """
    text = answer.lower()
    return all(any(alt.strip().lower() in text for alt in fact.split("|")) for fact in facts)
