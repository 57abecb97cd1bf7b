"""A run folder's files, kept safe from kills, viewers and a second runner.

- `read_results` only reads: a viewer (the Evals tab) never changes a file a runner writes.
- `repair_tail` is the one place a results file is cut, and only its last line, when a kill
  left it without its newline; the runner calls it (holding `claim`) before appending.
- `claim(out)` is an exclusive lock on the folder (`flock`, so a killed runner never leaves a
  stale lock behind): a second runner on the same folder is refused with a message.
- `fingerprint(settings, suite)` hashes what produced the rows (corpus, index settings,
  template and dataset contents); `check_inputs` refuses to resume when it changed.
- `write_atomic` writes summary.json and report.html so a kill never leaves half a file.
- `dataset_names` gives each dataset a distinct name for item ids, even when stems collide.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from assistant.errors import InputError
from assistant.files import write_atomic

__all__ = ["check_inputs", "claim", "dataset_names", "fingerprint", "read_results", "repair_tail",
           "write_atomic"]

log = logging.getLogger("courselab")

LOCK = ".lock"
INPUTS = "inputs.json"


def read_results(path: Path) -> list[dict]:
    """The complete rows of a results file; never writes to it.

    A last line without its newline is being written (or was cut by a kill): it is left out.
    A bad line in the middle is skipped with a warning, not deleted; its item is simply not
    done, so a resumed run answers it again.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # the part after the last newline: empty, or a line not finished yet
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            row = None
        if not isinstance(row, dict):
            log.warning("%s:%d: not a result row; skipped", path, number)
            continue
        rows.append(row)
    return rows


def repair_tail(path: Path) -> int:
    """Make the file end at a line boundary before appending; returns the bytes dropped.

    Only a last line with no newline is touched: a complete JSON object gets its newline,
    anything else (a cut line) is cut off. Every earlier byte stays as it is.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if not data or data.endswith(b"\n"):
        return 0
    start = data.rfind(b"\n") + 1
    try:
        whole = isinstance(json.loads(data[start:]), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        whole = False
    with open(path, "r+b") as f:
        if whole:
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
            return 0
        f.truncate(start)
    log.warning("%s: dropped a line cut by a kill (%d bytes)", path, len(data) - start)
    return len(data) - start


@contextlib.contextmanager
def claim(out: Path) -> Iterator[Path]:
    """Hold the run folder for one runner; a second one gets an InputError at once."""
    import fcntl

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # a file or a dangling link where the folder goes, no permission, ...
        raise InputError(f"cannot use {out} as a run folder ({e.strerror or e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another run is writing to {out}; wait for it or choose another "
                             "--out folder") from None
        yield out
    finally:
        os.close(fd)  # closing releases the lock; a killed process releases it too


def _digest(paths: list[Path], root: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in paths:
        name = p.relative_to(root).as_posix() if root else str(p)
        h.update(name.encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()[:16]


def fingerprint(settings, suite) -> dict:
    """What the rows of a run depend on besides the suite: corpus, index settings, template
    and dataset contents, local models' precision and device. A resume is allowed only
    while it is the same."""
    from assistant.corpus.chunks import corpus_files

    corpus = Path(settings.corpus_dir)
    try:
        files = corpus_files(corpus)
    except Exception:  # noqa: BLE001 (a missing corpus is the runner's error to report)
        files = []
    templates = {}
    for name in suite.templates:
        path = Path(settings.prompts_dir) / f"{name}.yaml"
        candidate = Path(name)
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            path = candidate
        templates[name] = _digest([path])
    return {
        "corpus": _digest(files, corpus),
        "index": {"embedder": settings.embedder, "collection": settings.collection,
                  "chroma_url": settings.chroma_url, "min_score": settings.min_score},
        "templates": templates,
        "datasets": {str(p): _digest([Path(p)]) for p in suite.datasets},
        # local models' weights: a resume under another precision or device would mix rows
        "weights": {"precision": {name: _resolved_precision(settings, name) for name in suite.models},
                    "device": settings.device},
    }


def _resolved_precision(settings, model_name: str) -> str:
    """The precision a local model loads in, not the setting: what 'auto' means changed (fp32,
    then bf16 on CPUs with native bf16, then int4 for SmolLM2 there), so a run started
    before must not resume after."""
    from assistant.models.precision import resolve

    device = str(settings.device or "auto")
    device = device if device.startswith(("cuda", "mps")) else "cpu"
    return resolve(settings.precision, device, model_name)


def check_inputs(out: Path, settings, suite) -> dict:
    """Record the fingerprint of a new run; refuse to resume one whose inputs changed."""
    out, current = Path(out), fingerprint(settings, suite)
    path = out / INPUTS
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            before = None
        if isinstance(before, dict) and "weights" not in before:
            before = {**before, "weights": current["weights"]}  # a run recorded before weights
        if before != current:
            changed = [k for k in current if not isinstance(before, dict) or before.get(k)
                       != current[k]]
            raise InputError(f"{out}: the {', '.join(changed) or 'inputs'} changed since this run "
                             "started; its rows would mix both. Choose a new --out folder")
        return current
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(current, indent=2))
    return current


def dataset_names(paths: list) -> dict[str, str]:
    """A distinct name per dataset for item ids: the stem, or more of the path when stems collide.

    >>> dataset_names(["a/qa.jsonl", "b/qa.jsonl", "c/other.csv"])
    {'a/qa.jsonl': 'a/qa', 'b/qa.jsonl': 'b/qa', 'c/other.csv': 'other'}
    """
    keys = [str(p) for p in paths]
    stems = [Path(p).stem for p in keys]
    names = {}
    for key, stem in zip(keys, stems):
        if stems.count(stem) == 1:
            names[key] = stem
            continue
        parts = Path(key).with_suffix("").parts
        for n in range(2, len(parts) + 1):
            name = "/".join(parts[-n:])
            if sum("/".join(Path(o).with_suffix("").parts[-n:]) == name for o in keys) == 1:
                break
        else:
            name = Path(key).as_posix()  # same path twice, or same stem with two suffixes
        names[key] = name
    return names
