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
