"""Conversations kept on the server, keyed by an opaque id that each browser holds.

Gradio sends a BrowserState's secret to every client in the page config, so anything the
browser keeps is readable and forgeable by its holder. The browser therefore keeps only a
random id (a capability: whoever has it sees that conversation, nothing else); the turns stay
here, in one small JSON file per id, written atomically with mode 0600. The folder is bounded:
the least recently used conversations are dropped first.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from pathlib import Path

from assistant.files import write_atomic

log = logging.getLogger("courselab")

MAX_CONVERSATIONS = 1000  # with MAX_FILE_BYTES: at most 1 GB on disk
MAX_FILE_BYTES = 1_000_000
_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")


def new_id() -> str:
    return secrets.token_urlsafe(32)


def valid_id(value) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (a kill leaves the old one or the new)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, mode=0o600)


def browser_secret(folder: Path) -> str:
    """The key Gradio encrypts browser storage with, kept so stored ids survive a restart.

    Created 0600 and atomically; an empty or unreadable file is replaced with a warning
    (stored ids are then forgotten) instead of silently using a new key at every start.
    """
    path = Path(folder) / "browser-secret"
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = None
    except (OSError, UnicodeDecodeError) as e:
        log.warning("courselab: cannot read %s (%s); making a new one", path, e)
        value = ""
    if value and len(value) >= 16:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # an older version wrote it readable by everyone
        return value
    if value is not None:
        log.warning("courselab: %s is empty or too short; making a new one (browsers' saved "
                    "conversations are forgotten)", path)
    value = secrets.token_urlsafe(32)
    write_private(path, value + "\n")
    return value


class HistoryStore:
    """Turns per browser id, on disk under `folder` (bounded, atomic, private)."""

    def __init__(self, folder: Path, max_turns: int = 100,
                 max_conversations: int = MAX_CONVERSATIONS):
        self.folder = Path(folder)
        self.max_turns = max_turns
        self.max_conversations = max_conversations
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        if not valid_id(key):
            raise ValueError("not a conversation id")
        return self.folder / f"{key}.json"

    def load(self, key) -> list[dict]:
        """The turns kept for `key`; an unknown or malformed id has none."""
        if not valid_id(key):
            return []
        path = self._path(key)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return []
            turns = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(turns, list):
            return []
        return [t for t in turns if isinstance(t, dict) and "question" in t][-self.max_turns:]

    def save(self, key: str, turns: list[dict]) -> None:
        turns = list(turns)[-self.max_turns:]
        data = json.dumps(turns, ensure_ascii=False).encode("utf-8")
        while len(data) > MAX_FILE_BYTES and turns:  # keep the newest turns that fit, in bytes
            turns = turns[1:]
            data = json.dumps(turns, ensure_ascii=False).encode("utf-8")
        text = data.decode("utf-8")
        with self._lock:
            write_private(self._path(key), text)
            self._evict()

    def forget(self, key) -> None:
        if valid_id(key):
            self._path(key).unlink(missing_ok=True)

    def _evict(self) -> None:
        files = list(self.folder.glob("*.json"))
        if len(files) <= self.max_conversations:
            return
        files.sort(key=lambda p: p.stat().st_mtime)
        for path in files[: len(files) - self.max_conversations]:
            path.unlink(missing_ok=True)
