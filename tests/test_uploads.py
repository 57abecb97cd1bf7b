"""Uploads: every bad file is refused with a reason and leaves the corpus exactly as it was."""

import pytest

from assistant.corpus.uploads import add_files
from assistant.errors import InputError

GOOD = b"# Notes\n\n## Mixture of experts\n\nA router sends each token to a few experts.\n"


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, data, error", [
    ("../escape.md", GOOD, "unsafe file name"),
    ("/etc/passwd.md", GOOD, "unsafe file name"),
    ("sub/dir.md", GOOD, "unsafe file name"),
    (".hidden.md", GOOD, "unsafe file name"),
    ("notes..md", GOOD, "unsafe file name"),
    ("evil<script>.md", GOOD, "unsafe file name"),
    ("slides.pdf", GOOD, "only .md and .txt"),
    ("notes.md", b"\xff\xfe\x00binary", "not UTF-8"),
    ("notes.md", b"text\x00more", "not a text file"),
    ("notes.md", b"   \n\n", "no text to index"),
    ("notes.md", b"x" * 1_000_001, "the limit is 1,000,000"),
    ("course.md", GOOD, "already in the corpus"),
])
def test_bad_files_are_refused_and_nothing_changes(corpus_dir, name, data, error):
    before = snapshot(corpus_dir)
    with pytest.raises(InputError, match=error.replace("(", r"\(")):
        add_files([("fine.md", GOOD), (name, data)], corpus_dir)
    assert snapshot(corpus_dir) == before  # the good file of the batch was not written either


def test_good_files_are_written_whole(corpus_dir):
    written = add_files([("moe notes.md", GOOD), ("extra.txt", b"Plain text about LoRA adapters.")],
                        corpus_dir)
    assert [p.name for p in written] == ["moe notes.md", "extra.txt"]
    assert (corpus_dir / "moe notes.md").read_bytes() == GOOD
    assert not list(corpus_dir.glob(".*.part"))


def test_duplicate_names_in_one_batch_are_refused(corpus_dir):
    with pytest.raises(InputError, match="same name"):
        add_files([("a.md", GOOD), ("a.md", GOOD)], corpus_dir)
