"""A generation cache on disk: an unchanged cell of an evaluation costs nothing to rerun.

Keyed on the model, its generation options and the exact rendered prompt, so a
changed template, option or retrieval misses and everything else hits.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path


def cache_key(model: str, options: dict, prompt: str) -> str:
    blob = json.dumps({"model": model, "options": options, "prompt": prompt}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class GenerationCache:
    """key -> {text, tokens, latency_s}, in one SQLite file (safe to share between runs)."""

    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, value TEXT)")
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM generations WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO generations VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self._db.close()
