"""The index follows the corpus asked for; one process per index folder; atomic keyword swap;
a killed upload is finished by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner
from conftest import ROOT

from assistant.chain.factory import open_index, open_retriever, sync_index
from assistant.cli import cli
from assistant.corpus import load_corpus
from assistant.errors import CorpusError, IndexStoreError
from assistant.retrieval import CourseRetriever
from assistant.retrieval import retriever as retriever_module
from assistant.retrieval.embeddings import HashEmbedder
from assistant.retrieval.index import CourseIndex, corpus_stamp

OTHER_COURSE = "# Gardening\n\n## Tomatoes\n\nTomatoes need six hours of sun and deep watering.\n"


@pytest.fixture
def other_course(tmp_path):
    folder = tmp_path / "my-course"
    folder.mkdir()
    (folder / "garden.md").write_text(OTHER_COURSE)
    return folder


def sources(retriever) -> set[str]:
    return {c.source for c in retriever.index.all_chunks()}


def test_the_stamp_changes_with_any_file_and_not_otherwise(corpus_dir):
    first = corpus_stamp(corpus_dir)
    assert corpus_stamp(corpus_dir) == first
    (corpus_dir / "glossary.txt").write_text((corpus_dir / "glossary.txt").read_text() + " more")
    assert corpus_stamp(corpus_dir)["corpus_digest"] != first["corpus_digest"]


def test_a_retriever_on_another_corpus_syncs_the_index_first(settings, other_course):
    sync_index(open_index(settings), settings)
    notes = []
    other = settings.model_copy(update={"corpus_dir": other_course})
    retriever = open_retriever(other, notify=notes.append)
    assert sources(retriever) == {"garden.md"}
    assert "Tomatoes" in retriever.search("How much sun do tomatoes need?", 1)[0].text
    assert any(str(other_course) in n for n in notes)
    back = open_retriever(settings)  # and back again: the first course, not the garden
    assert sources(back) == {"course.md", "glossary.txt"}


def test_a_corpus_edited_behind_the_index_is_synced_at_the_next_open(settings, corpus_dir):
    sync_index(open_index(settings), settings)
    (corpus_dir / "extra.md").write_text("## Dropout\n\nDropout zeroes random activations.\n")
    assert "extra.md" in sources(open_retriever(settings))


def test_an_up_to_date_index_is_not_synced_again(settings, monkeypatch):
    sync_index(open_index(settings), settings)
    calls = []
    monkeypatch.setattr(CourseIndex, "sync", lambda *a, **k: calls.append(a))
    open_retriever(settings)
    assert calls == []


@pytest.mark.parametrize("command", [["retrieve", "attention"], ["ask", "What is attention?"],
                                     ["app", "--port", "1"]])
def test_a_missing_corpus_folder_is_one_error_line(fake_env, tmp_path, command):
    runner = CliRunner()
    assert runner.invoke(cli, ["index"]).exit_code == 0  # an index exists: it must not answer
    result = runner.invoke(cli, ["--corpus", str(tmp_path / "nope"), *command])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: corpus folder not found")
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout


def test_cli_on_another_corpus_answers_from_that_corpus(fake_env, other_course):
    runner = CliRunner()
    assert runner.invoke(cli, ["index"]).exit_code == 0
    result = runner.invoke(cli, ["--corpus", str(other_course), "retrieve", "tomatoes sun",
                                 "--json"])
    assert result.exit_code == 0 and "garden.md" in result.stdout and "course.md" not in result.stdout


def test_missing_corpus_is_refused_by_open_retriever(settings, tmp_path):
    sync_index(open_index(settings), settings)
    with pytest.raises(CorpusError, match="not found"):
        open_retriever(settings.model_copy(update={"corpus_dir": tmp_path / "gone"}))


# --- one process per index folder -------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from assistant.retrieval.embeddings import HashEmbedder
    from assistant.retrieval.index import CourseIndex
    CourseIndex(HashEmbedder(), path={path!r}).count()
    print("holding", flush=True)
    time.sleep(120)
""")


def test_a_second_process_on_one_index_folder_is_refused(tmp_path):
    folder = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(folder))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(IndexStoreError, match=f"in use by another courselab process .pid {holder.pid}"):
            CourseIndex(HashEmbedder(), path=folder).count()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    # a killed holder frees the folder
    assert CourseIndex(HashEmbedder(), path=folder).count() == 0


# --- the keyword index is swapped whole --------------------------------------------------
def test_a_search_during_refresh_sees_old_chunks_with_old_scores(settings, corpus_dir, monkeypatch):
    index = open_index(settings)
    sync_index(index, settings)
    retriever = CourseRetriever(index=index, k=3)
    retriever.search("warm-up", 1)  # the keyword index of the first corpus
    before = {c.chunk_id: c.text for c in index.all_chunks()}
    (corpus_dir / "glossary.txt").unlink()  # the new corpus is smaller: old BM25 rows dangle
    sync_index(index, settings)
    seen = []
    real = retriever_module.find_abbreviations

    def search_meanwhile(text):
        seen.append(retriever._keyword_scores(retriever._snapshot(), "BERT masks tokens glossary"))
        return real(text)

    monkeypatch.setattr(retriever_module, "find_abbreviations", search_meanwhile)
    retriever.refresh()
    assert seen and seen[0]  # the search ran mid-refresh and got keyword scores
    assert set(seen[0]) <= set(before)  # every id scored belongs to the snapshot it came from
    after = retriever._snapshot()
    assert {c.chunk_id for c in after.chunks} == {c.chunk_id for c in index.all_chunks()}
    assert len(after.chunks) == len(after.bm25.doc_len)


# --- a killed upload is finished by the next start ---------------------------------------
UPLOADER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from assistant.config import Settings
    from assistant.retrieval import index as index_module
    from assistant.retrieval.embeddings import HashEmbedder
    from assistant.service import Service

    index_module.BATCH = 1
    calls = 0
    real = HashEmbedder.embed_documents

    def dying(self, texts):  # kill -9 halfway through embedding the uploaded file
        global calls
        calls += 1
        if calls == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, texts)

    settings = Settings(corpus_dir={corpus!r}, index_dir={index!r}, cache_dir={cache!r},
                        embedder="fake-hash", model="fake")
    service = Service(settings)
    service.load()
    assert service.ready, service.error
    HashEmbedder.embed_documents = dying
    service.add_files([("upload.md", {text!r}.encode())])
""")


def test_kill_during_upload_then_the_next_start_completes_the_index(settings, tmp_path):
    from assistant.service import Service

    text = "".join(f"## Topic {n}\n\nTopic {n} is about item{n} and nothing else.\n\n"
                   for n in range(6))
    script = UPLOADER.format(root=str(ROOT), corpus=str(settings.corpus_dir),
                             index=str(settings.index_dir), cache=str(settings.cache_dir), text=text)
    dead = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    assert (settings.corpus_dir / "upload.md").is_file()  # the file is in, its index half done
    started = time.perf_counter()
    service = Service(settings)
    service.load()  # the next start
    assert service.ready, service.error
    index = service.retriever().index
    wanted = {c.chunk_id for c in load_corpus(settings.corpus_dir)}
    stored = [c.chunk_id for c in index.all_chunks()]
    assert set(stored) == wanted and len(stored) == len(wanted)  # nothing lost, nothing twice
    assert index.is_complete() and index.holds(corpus_stamp(settings.corpus_dir))
    hits = service.search("What is topic 5 about?", 2)
    assert any("item5" in h.text for h in hits)
    assert time.perf_counter() - started < 120


def test_unreadable_corpus_file_and_unwritable_index_folder_are_one_line(settings, tmp_path,
                                                                        monkeypatch):
    from pathlib import Path

    from assistant.retrieval import index as index_module

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(Path, "read_bytes", denied)
        with pytest.raises(CorpusError, match="cannot read .*Permission denied"):
            corpus_stamp(settings.corpus_dir)
    monkeypatch.setattr(index_module.os, "open", denied)
    with pytest.raises(IndexStoreError, match="cannot use the index folder .*Permission denied"):
        CourseIndex(HashEmbedder(), path=tmp_path / "ro").count()


def test_corpus_remove_while_another_process_holds_the_index_removes_nothing(tmp_path, fake_env):
    from click.testing import CliRunner

    from assistant.cli import cli
    from assistant.corpus.uploads import add_files, uploaded_names

    add_files([("notes.md", b"# Notes\n\nAttention notes.")], fake_env)
    folder = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(folder))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        done = CliRunner().invoke(cli, ["corpus", "remove", "notes.md"])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    assert done.exit_code == 2 and "in use by another courselab process" in done.stderr
    assert (fake_env / "notes.md").exists() and uploaded_names(fake_env) == ["notes.md"]
