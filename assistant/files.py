"""Writing files safely: atomically, without following links, with the permissions asked for.

Every file the app writes for later (run summaries, templates, uploads, conversations, the
browser key) goes through `write_atomic`: readers see the old file or the new one, never half
of one, and a link someone left at a temp name is never written through.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o644) -> Path:
    """Write `text` to `path` through a fresh temp file in the same folder, then rename.

    The temp file is created exclusively (O_EXCL, O_NOFOLLOW) under a random name, flushed to
    disk, and renamed over `path`; a link at `path` is replaced, never followed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# the largest text file read whole (a dataset); templates, suites and pools are far smaller
MAX_TEXT_FILE_BYTES = 100_000_000


def read_text(path: Path, error: type[Exception], limit: int = MAX_TEXT_FILE_BYTES) -> str:
    """A UTF-8 text file of at most `limit` bytes. Any problem (unreadable, too large, not
    UTF-8) is one `error(...)` naming the file, never a traceback; at most limit + 1 bytes are
    read, so /dev/zero or a huge file cannot fill the memory.

    >>> read_text(Path("/nonexistent.yaml"), ValueError)
    Traceback (most recent call last):
    ValueError: /nonexistent.yaml: cannot read (No such file or directory)
    """
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start} is {data[e.start]:#04x})") from None


def yaml_problem(error: Exception) -> str:
    """A YAML parser's error in one line, with where it is ('line 2, column 3: ...').

    >>> import yaml
    >>> try:
    ...     yaml.safe_load("name: [unclosed\\n")
    ... except yaml.YAMLError as e:
    ...     print(yaml_problem(e))
    line 2, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)
    """
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")
