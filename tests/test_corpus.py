"""Chunking: heading paths, markup removal, list-aware splitting, content ids."""

from __future__ import annotations

import pytest

from assistant.corpus import load_corpus, split_markdown
from assistant.errors import CorpusError


def sections_of(chunks):
    return [c.section for c in chunks]


def test_heading_paths_skip_the_title_and_strip_emphasis(corpus_dir):
    chunks = [c for c in load_corpus(corpus_dir) if c.source == "course.md"]
    paths = set(sections_of(chunks))
    assert "Masked Language Modeling" in paths
    assert ("Popular Models > 1. BERT (Bidirectional Encoder Representation from Transformers)"
            in paths)
    assert not any("**" in p or "A Tiny Course" in p for p in paths)


def test_table_of_contents_and_images_are_dropped(corpus_dir):
    chunks = load_corpus(corpus_dir)
    assert "What's Covered" not in sections_of(chunks)
    assert not any("<img" in c.text for c in chunks)


def test_plain_text_files_use_their_name_as_section(corpus_dir):
    chunks = [c for c in load_corpus(corpus_dir) if c.source == "glossary.txt"]
    assert chunks and {c.section for c in chunks} == {"glossary"}


def test_long_list_item_is_cut_between_lines_and_keeps_its_label():
    body = "\n".join(f"    - Sentence number {i} about encoders and decoders." for i in range(30))
    text = f"# T\n\n## Section\n1. **Autoencoding**\n{body}\n"
    chunks = split_markdown(text, "x.md", limit=300)
    assert len(chunks) > 2
    assert all(len(c.text) <= 300 + 60 for c in chunks)
    assert all(c.text.startswith("1. **Autoencoding**") for c in chunks)


def test_bold_label_before_a_list_joins_the_heading_path():
    text = "# T\n\n## Tasks\n**Autoencoding Task**:\n1. **Objective**:\n   - rebuild the input\n"
    (chunk,) = split_markdown(text, "x.md")
    assert chunk.section == "Tasks > Autoencoding Task"


def test_ids_derive_from_content(corpus_dir):
    first = {c.chunk_id for c in load_corpus(corpus_dir)}
    assert first == {c.chunk_id for c in load_corpus(corpus_dir)}
    course = corpus_dir / "course.md"
    course.write_text(course.read_text().replace("15%", "20%"))
    second = {c.chunk_id for c in load_corpus(corpus_dir)}
    assert len(first - second) == 1 and len(second - first) == 1


def test_identical_chunks_get_distinct_ids(tmp_path):
    (tmp_path / "a.md").write_text("## A\nSame text.\n\n## A\nSame text.\n")
    ids = [c.chunk_id for c in load_corpus(tmp_path)]
    assert len(ids) == 2 and len(set(ids)) == 2


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "corpus folder not found"),
    (lambda p: p, "no .md or .txt files"),
])
def test_bad_corpus_folders(tmp_path, make, message):
    with pytest.raises(CorpusError, match=message):
        load_corpus(make(tmp_path))
