"""Incremental indexing: unchanged, edited, deleted, killed halfway, corrupt."""

from __future__ import annotations

import pytest

from assistant.corpus import load_corpus
from assistant.errors import IndexStoreError
from assistant.retrieval import index as index_module
from assistant.retrieval.embeddings import HashEmbedder
from assistant.retrieval.index import CourseIndex


class CountingEmbedder(HashEmbedder):
    """Counts embedded texts; can fail after a number of calls, like a killed process."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.texts = 0
        self.calls = 0
        self.fail_after = fail_after

    def embed_documents(self, texts):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("killed")
        self.texts += len(texts)
        return super().embed_documents(texts)


@pytest.fixture
def embedder():
    return CountingEmbedder()


def make_index(tmp_path, embedder):
    return CourseIndex(embedder, path=tmp_path / "index")


def test_first_sync_adds_every_chunk(tmp_path, corpus_dir, embedder):
    chunks = load_corpus(corpus_dir)
    report = make_index(tmp_path, embedder).sync(chunks)
    assert (report.added, report.kept, report.removed) == (len(chunks), 0, 0)
    assert make_index(tmp_path, embedder).count() == len(chunks)


def test_unchanged_corpus_embeds_nothing(tmp_path, corpus_dir, embedder):
    make_index(tmp_path, embedder).sync(load_corpus(corpus_dir))
    before = embedder.texts
    report = make_index(tmp_path, embedder).sync(load_corpus(corpus_dir))
    assert embedder.texts == before
    assert not report.changed and "nothing embedded" in report.summary()


def test_edited_file_updates_exactly_its_chunks(tmp_path, corpus_dir, embedder):
    index = make_index(tmp_path, embedder)
    total = index.sync(load_corpus(corpus_dir)).added
    course = corpus_dir / "course.md"
    course.write_text(course.read_text().replace("15%", "20%"))
    before = embedder.texts
    report = index.sync(load_corpus(corpus_dir))
    assert (report.added, report.removed, report.kept) == (1, 1, total - 1)
    assert embedder.texts - before == 1
    assert any("20%" in c.text for c in index.all_chunks())
    assert not any("15%" in c.text for c in index.all_chunks())


def test_deleted_file_removes_its_chunks(tmp_path, corpus_dir, embedder):
    index = make_index(tmp_path, embedder)
    index.sync(load_corpus(corpus_dir))
    (corpus_dir / "glossary.txt").unlink()
    report = index.sync(load_corpus(corpus_dir))
    assert report.removed >= 1 and report.added == 0
    assert {c.source for c in index.all_chunks()} == {"course.md"}


def test_index_killed_halfway_is_usable_and_completed_next_time(tmp_path, corpus_dir,
                                                                monkeypatch):
    monkeypatch.setattr(index_module, "BATCH", 2)
    chunks = load_corpus(corpus_dir)
    dying = CountingEmbedder(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        make_index(tmp_path, dying).sync(chunks)
    partial = make_index(tmp_path, HashEmbedder())
    assert partial.count() == 4 and not partial.is_complete()
    assert partial.query(HashEmbedder().embed_query("BERT"), 2)  # still answers queries
    resumed = CountingEmbedder()
    report = make_index(tmp_path, resumed).sync(chunks)
    assert (report.added, report.kept) == (len(chunks) - 4, 4)
    assert resumed.texts == len(chunks) - 4
    assert make_index(tmp_path, resumed).is_complete()


@pytest.mark.parametrize("garbage", [b"garbage\n", b"this is not a database" * 100])
def test_corrupt_index_says_how_to_rebuild(tmp_path, corpus_dir, embedder, garbage):
    from chromadb.api.client import SharedSystemClient

    folder = tmp_path / "index"
    CourseIndex(embedder, path=folder).sync(load_corpus(corpus_dir))
    SharedSystemClient.clear_system_cache()  # as in a new process
    (folder / "chroma.sqlite3").write_bytes(garbage)
    with pytest.raises(IndexStoreError, match="courselab index --rebuild"):
        CourseIndex(embedder, path=folder).count()
    report = CourseIndex(embedder, path=folder).sync(load_corpus(corpus_dir), rebuild=True)
    assert report.added > 0 and CourseIndex(embedder, path=folder).count() == report.added


def test_rebuild_never_deletes_a_folder_that_is_not_an_index(tmp_path, embedder):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    (folder / "chroma.sqlite3").mkdir()  # unreadable, but the folder holds user files too
    index = CourseIndex(embedder, path=folder)
    with pytest.raises(IndexStoreError):
        index.sync([], rebuild=True)
    assert (folder / "precious.txt").read_text() == "keep me"


def test_index_built_with_another_embedder_is_refused(tmp_path, corpus_dir, embedder):
    make_index(tmp_path, embedder).sync(load_corpus(corpus_dir))
    other = HashEmbedder()
    other.name = "another-model"
    with pytest.raises(IndexStoreError, match="--rebuild"):
        make_index(tmp_path, other).count()


def test_query_before_any_index_says_how_to_build(tmp_path, embedder):
    with pytest.raises(IndexStoreError, match="courselab index"):
        make_index(tmp_path, embedder).query([0.0] * 256, 3)
