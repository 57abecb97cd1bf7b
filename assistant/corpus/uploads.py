"""Adding files to the corpus from the app: checked first, written atomically.

A batch of uploads is all or nothing: every file is checked (type, size,
encoding, a safe name, at least one passage) before any is written, so a bad
file leaves the corpus exactly as it was. The corpus as a whole has a size limit,
and the names of added files are kept in `.uploads`, so that exactly those (never
the course's own files) can be removed again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from assistant.corpus import SUFFIXES, split_markdown
from assistant.errors import InputError
from assistant.files import write_atomic

MAX_UPLOAD_BYTES = 1_000_000
MAX_CORPUS_BYTES = 20_000_000  # the whole corpus folder, course files included
MANIFEST = ".uploads"
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


def corpus_bytes(corpus_dir: Path) -> int:
    """The size of every course file under the corpus folder."""
    return sum(p.stat().st_size for p in Path(corpus_dir).rglob("*")
               if p.is_file() and p.suffix.lower() in SUFFIXES)


def add_files(files: list[tuple[str, bytes]], corpus_dir: Path,
              max_bytes: int = MAX_UPLOAD_BYTES, max_total: int = MAX_CORPUS_BYTES) -> list[Path]:
    """Check every file, then write them all; nothing is written if one is refused."""
    if not files:
        raise InputError("no files to add")
    names = [name for name, _ in files]
    if len(set(names)) != len(names):
        raise InputError("two uploaded files have the same name")
    total = corpus_bytes(corpus_dir) + sum(len(data) for _, data in files)
    if total > max_total:
        raise InputError(f"the corpus would grow to {total:,} bytes; the limit is {max_total:,} "
                         "(remove an added file first)")
    uploads = [check_upload(name, data, corpus_dir, max_bytes) for name, data in files]
    written: list[Path] = []
    try:
        # listed before writing: a kill in between leaves a removable file, never an orphan
        _write_manifest(corpus_dir, uploaded_names(corpus_dir) + [u.name for u in uploads])
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
    if paths:
        corpus_dir = Path(paths[0]).parent
        gone = {Path(p).name for p in paths}
        _write_manifest(corpus_dir, [n for n in uploaded_names(corpus_dir) if n not in gone])


def uploaded_names(corpus_dir: Path) -> list[str]:
    """The files added from the app that are still in the corpus folder, in order added."""
    try:
        lines = (Path(corpus_dir) / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [n for n in dict.fromkeys(lines) if n and _SAFE_NAME.fullmatch(n)
            and (Path(corpus_dir) / n).is_file()]


def remove_upload(name: str, corpus_dir: Path) -> Path:
    """Delete a file that was added from the app; the course's own files are refused."""
    if not isinstance(name, str) or name not in uploaded_names(corpus_dir):
        raise InputError(f"{str(name)[:100]!r} is not a file added from the app; only those "
                         "can be removed")
    path = Path(corpus_dir) / safe_name(name)
    remove_files([path])
    return path


def _write_manifest(corpus_dir: Path, names: list[str]) -> None:
    text = "".join(f"{n}\n" for n in dict.fromkeys(names))
    _write_atomic(Path(corpus_dir) / MANIFEST, text)


def _write_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, text)  # a fresh temp name: a link left there is never followed
