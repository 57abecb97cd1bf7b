"""The course index: chunks embedded into a Chroma collection, updated incrementally.

Chunk ids derive from content, so a sync adds only new chunks and removes only
vanished ones. Writes go in small batches: a sync killed halfway leaves a usable
index (marked incomplete) that the next sync completes.

The collection's metadata records which corpus it holds (the folder and a digest
of its files' names and contents), so a command on another corpus, or on a corpus
changed behind the index's back, knows it must sync first. A local index folder
is held by one process at a time (a lock file inside it): Chroma's local store
is not safe for two processes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from assistant.corpus import Chunk, corpus_files
from assistant.errors import CorpusError, IndexStoreError

BATCH = 64
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REBUILD_HINT = "rebuild it with `courselab index --rebuild`"
LOCK_NAME = ".courselab.lock"
_HELD: dict[str, int] = {}  # resolved index folder -> descriptor of its locked lock file
_HELD_GUARD = threading.Lock()


def corpus_stamp(corpus_dir: Path) -> dict[str, str]:
    """Which corpus an index holds: the folder, and a digest of every file's name and content.

    A missing or empty corpus folder is a CorpusError (nothing to answer from).
    """
    root = Path(corpus_dir)
    digest = hashlib.sha256()
    for path in corpus_files(root):
        name = path.relative_to(root).as_posix()
        try:
            content = path.read_bytes()
        except OSError as e:
            raise CorpusError(f"cannot read {path}: {e}") from e
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return {"corpus": str(root.resolve()), "corpus_digest": digest.hexdigest()}


def lock_folder(path: Path) -> None:
    """Hold the index folder for this process until it exits (a kill frees it too).

    Another process holding it is an IndexStoreError naming that process.
    """
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock (Chroma's own checks only)
        return
    key = str(Path(path).resolve())
    with _HELD_GUARD:
        if key in _HELD:
            return
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
            fd = os.open(Path(path) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise IndexStoreError(f"cannot use the index folder {path}: {e.strerror or e}; "
                                  "choose another --index-dir") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 20, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise IndexStoreError(
                f"the index at {path} is in use by another courselab process (pid {holder}); "
                "stop that one, or give this one its own --index-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = fd


def release_folder(path: Path) -> None:
    """Let other processes open the index folder again."""
    with _HELD_GUARD:
        fd = _HELD.pop(str(Path(path).resolve()), None)
    if fd is not None:
        os.close(fd)


@dataclass
class SyncReport:
    """What a sync did, by chunk count."""

    added: int = 0
    kept: int = 0
    removed: int = 0
    sections: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def summary(self) -> str:
        if not self.changed:
            return f"index up to date: {self.kept} chunks kept, nothing embedded"
        return f"added {self.added}, kept {self.kept}, removed {self.removed} chunks"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the index, with its similarity to a query when queried."""

    chunk_id: str
    text: str
    section: str
    source: str
    score: float = 0.0


class CourseIndex:
    """A Chroma collection of course chunks, local (a folder) or remote (a Chroma server)."""

    def __init__(self, embedder, path: Path | None = None, url: str | None = None,
                 collection: str = "course"):
        if not (path or url):
            raise IndexStoreError("an index needs a folder or a Chroma server URL")
        self.embedder = embedder
        self.path = Path(path) if path else None
        self.url = url
        self.name = collection

    @property
    def where(self) -> str:
        return self.url or str(self.path)

    @cached_property
    def client(self):
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        try:
            if self.url:
                from urllib.parse import urlparse

                u = urlparse(self.url)
                return chromadb.HttpClient(host=u.hostname, port=u.port or 8000,
                                           ssl=u.scheme == "https", settings=settings)
            lock_folder(self.path)
            return chromadb.PersistentClient(path=str(self.path), settings=settings)
        except IndexStoreError:
            raise
        except Exception as e:
            # subtle: Chroma caches one system per path; a failed open must not poison the next
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
            if self.url:
                raise IndexStoreError(f"cannot reach the Chroma server at {self.url} ({e})") from e
            raise IndexStoreError(f"index at {self.where} is unreadable ({e}); {REBUILD_HINT}") from e

    def _collection(self, create: bool = False):
        try:
            if create:
                return self.client.get_or_create_collection(
                    self.name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedder": self.embedder.name, "complete": False})
            return self.client.get_collection(self.name, embedding_function=None)
        except IndexStoreError:
            raise
        except Exception as e:
            if not create and _is_missing(e):
                return None
            raise IndexStoreError(f"index at {self.where} is unreadable ({e}); {REBUILD_HINT}") from e

    def _checked(self, collection):
        built_with = (collection.metadata or {}).get("embedder")
        if built_with and built_with != self.embedder.name:
            raise IndexStoreError(
                f"index at {self.where} was built with embedder {built_with!r}, not "
                f"{self.embedder.name!r}; {REBUILD_HINT}")
        return collection

    def count(self) -> int:
        """Chunks in the index (0 when there is no index yet)."""
        collection = self._collection()
        return 0 if collection is None else self._checked(collection).count()

    def is_complete(self) -> bool:
        collection = self._collection()
        return bool(collection is not None and (collection.metadata or {}).get("complete"))

    def holds(self, stamp: dict[str, str]) -> bool:
        """True when the index is complete and holds the corpus with this stamp's digest."""
        collection = self._collection()
        meta = (collection.metadata or {}) if collection is not None else {}
        return bool(meta.get("complete")) and meta.get("corpus_digest") == stamp["corpus_digest"]

    def corpus(self) -> str:
        """The corpus folder the index was last synced with ('' when unknown)."""
        collection = self._collection()
        return str(((collection.metadata or {}) if collection is not None else {}).get("corpus", ""))

    def sync(self, chunks: list[Chunk], rebuild: bool = False,
             progress: Callable[[int, int], None] | None = None,
             stamp: dict[str, str] | None = None) -> SyncReport:
        """Make the index hold exactly these chunks, embedding only the new ones.

        `stamp` (from `corpus_stamp`, taken before the chunks were read) is recorded
        once the index is complete; without one the index holds an unknown corpus.
        """
        if rebuild:
            self.clear()
        collection = self._checked(self._collection(create=True))
        existing = set(_call(collection.get, include=[])["ids"])
        wanted = {c.chunk_id: c for c in chunks}
        new = [c for cid, c in wanted.items() if cid not in existing]
        gone = sorted(existing - wanted.keys())
        report = SyncReport(len(new), len(existing & wanted.keys()), len(gone),
                            {c.section for c in new})
        stamp = stamp or {"corpus": "", "corpus_digest": ""}
        if report.changed or not self.holds(stamp):
            self._mark(collection, complete=False)
            for start in range(0, len(gone), BATCH):
                _call(collection.delete, ids=gone[start:start + BATCH])
            self._add(collection, new, progress)
            self._mark(collection, complete=True, stamp=stamp)
        return report

    def _add(self, collection, new: list[Chunk], progress) -> None:
        for start in range(0, len(new), BATCH):
            batch = new[start:start + BATCH]
            _call(collection.add, ids=[c.chunk_id for c in batch],
                  embeddings=self.embedder.embed_documents([c.embed_text for c in batch]),
                  documents=[c.text for c in batch], metadatas=[c.metadata() for c in batch])
            if progress:
                progress(min(start + BATCH, len(new)), len(new))

    def _mark(self, collection, complete: bool, stamp: dict[str, str] | None = None) -> None:
        # subtle: an incomplete index holds no known corpus, whatever it held before
        stamp = stamp or {"corpus": "", "corpus_digest": ""}
        _call(collection.modify, metadata={"embedder": self.embedder.name, "complete": complete,
                                           **stamp})

    def clear(self) -> None:
        """Drop the collection; a local folder that Chroma cannot even open is removed."""
        try:
            self.client.delete_collection(self.name)
        except IndexStoreError:
            if self.url or not _looks_like_index(self.path):
                raise IndexStoreError(
                    f"index at {self.where} is unreadable and the folder holds files that are "
                    "not Chroma's; move them away or choose another --index-dir") from None
            shutil.rmtree(self.path)
            release_folder(self.path)  # its lock file went with it; the next open takes a new one
            self.__dict__.pop("client", None)
        except Exception as e:
            if not _is_missing(e):
                raise IndexStoreError(f"cannot clear index at {self.where}: {e}") from e

    def query(self, vector: list[float], n: int) -> list[StoredChunk]:
        """The n chunks nearest to a query vector, best first, scored by cosine similarity."""
        collection = self._checked(self._require())
        n = min(n, collection.count())
        if n == 0:
            return []
        res = _call(collection.query, query_embeddings=[vector], n_results=n,
                    include=["documents", "metadatas", "distances"])
        rows = zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
        return [_stored(cid, doc, meta, 1.0 - dist) for cid, doc, meta, dist in rows]

    def all_chunks(self) -> list[StoredChunk]:
        """Every chunk, in corpus order (for keyword search and browsing)."""
        res = _call(self._require().get, include=["documents", "metadatas"])
        rows = sorted(zip(res["ids"], res["documents"], res["metadatas"]),
                      key=lambda r: (r[2].get("source", ""), r[2].get("position", 0)))
        return [_stored(cid, doc, meta) for cid, doc, meta in rows]

    def embeddings(self, ids: list[str]) -> dict[str, list[float]]:
        res = _call(self._require().get, ids=ids, include=["embeddings"])
        return dict(zip(res["ids"], (list(map(float, e)) for e in res["embeddings"])))

    def _require(self):
        collection = self._collection()
        if collection is None:
            raise IndexStoreError(f"no index at {self.where}; build it with `courselab index`")
        return collection


def _stored(cid: str, doc: str, meta: dict, score: float = 0.0) -> StoredChunk:
    return StoredChunk(cid, doc, meta.get("section", ""), meta.get("source", ""), float(score))


def _call(fn, **kwargs):
    """Run a Chroma call, turning its failures into one clear error."""
    try:
        return fn(**kwargs)
    except Exception as e:
        raise IndexStoreError(f"index operation failed ({e}); {REBUILD_HINT}") from e


def _is_missing(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return "notfound" in text or "does not exist" in text or "not found" in text


def _looks_like_index(path: Path | None) -> bool:
    """Only a folder holding nothing but Chroma's files may be deleted by a rebuild."""
    if not path or not path.is_dir():
        return False
    for entry in path.iterdir():
        if entry.name in ("chroma.sqlite3", LOCK_NAME) and entry.is_file():
            continue
        if entry.is_dir() and _UUID.fullmatch(entry.name):
            continue
        return False
    return True
