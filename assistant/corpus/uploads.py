"""Adding files to the corpus from the app: checked first, written atomically.

A batch of uploads is all or nothing: every file is checked (type, size,
encoding, a safe name, at least one passage) before any is written, so a bad
file leaves the corpus exactly as it was.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.corpus import SUFFIXES, split_markdown
from assistant.errors import InputError

MAX_UPLOAD_BYTES = 1_000_000
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")


@dataclass(frozen=True)
class Upload:
    """A checked file, ready to write."""

    name: str
    text: str


def safe_name(name: str) -> str:
    """The file name if it is a plain, safe name, else an InputError (no folders, no '..').

    >>> safe_name("notes on BERT.md")
    'notes on BERT.md'
    """
    if not _SAFE_NAME.fullmatch(name) or ".." in name or name.rstrip() != name:
        raise InputError(f"unsafe file name {name!r}: use letters, digits, spaces, '.', '_' or '-'")
    if Path(name).suffix.lower() not in SUFFIXES:
        raise InputError(f"{name}: only .md and .txt files can be added")
    return name


def check_upload(name: str, data: bytes, corpus_dir: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> Upload:
    """An Upload, or an InputError saying what is wrong with this file."""
    name = safe_name(name)
    if len(data) > max_bytes:
        raise InputError(f"{name} is {len(data):,} bytes; the limit is {max_bytes:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text") from None
    if "\x00" in text:
        raise InputError(f"{name} is not a text file")
    if not split_markdown(text, name):
        raise InputError(f"{name} holds no text to index")
    if (Path(corpus_dir) / name).exists():
        raise InputError(f"{name} is already in the corpus; rename the file to add it")
    return Upload(name, text)


def add_files(files: list[tuple[str, bytes]], corpus_dir: Path,
              max_bytes: int = MAX_UPLOAD_BYTES) -> list[Path]:
    """Check every file, then write them all; nothing is written if one is refused."""
    if not files:
        raise InputError("no files to add")
    names = [name for name, _ in files]
    if len(set(names)) != len(names):
        raise InputError("two uploaded files have the same name")
    uploads = [check_upload(name, data, corpus_dir, max_bytes) for name, data in files]
    written: list[Path] = []
    try:
        for upload in uploads:
            written.append(_write_atomic(Path(corpus_dir) / upload.name, upload.text))
    except OSError as e:
        for path in written:
            path.unlink(missing_ok=True)
        raise InputError(f"cannot write to the corpus folder: {e}") from e
    return written


def remove_files(paths: list[Path]) -> None:
    """Take added files out again (when indexing them failed)."""
    for path in paths:
        path.unlink(missing_ok=True)


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
