"""Read the course files and split them into heading-aware chunks.

Each chunk keeps its heading path ("Popular Modern LLMs > 1. BERT (...)") and
gets an id derived from its content, so re-indexing an unchanged corpus is free.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError

SUFFIXES = (".md", ".txt")
HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4"), ("#####", "h5")]
CHUNK_CHARS = 800

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage of the course."""

    text: str
    section: str
    source: str
    position: int
    chunk_id: str = field(default="")

    @property
    def embed_text(self) -> str:
        """What gets embedded and keyword-indexed: the heading path, then the text."""
        return f"{self.section}\n{self.text}" if self.section else self.text

    def metadata(self) -> dict:
        return {"section": self.section, "source": self.source, "position": self.position}


def strip_emphasis(text: str) -> str:
    """Remove markdown emphasis marks: '**Title**' -> 'Title'."""
    return _EMPHASIS.sub("", text).strip()


def clean_markdown(text: str) -> str:
    """Drop <img> tags (the images are not shipped) and trailing spaces."""
    text = _IMG.sub("", text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every .md/.txt file under the corpus folder, in a stable order."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    files = sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise CorpusError(f"no .md or .txt files in corpus folder: {corpus_dir}")
    return files


def _heading_path(metadata: dict, skip_title: bool) -> str:
    levels = [key for _, key in HEADERS if key in metadata]
    if skip_title and levels and levels[0] == "h1":
        levels = levels[1:]
    return " > ".join(strip_emphasis(metadata[key]) for key in levels)


def split_markdown(text: str, source: str, chunk_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """Split one document on its headings, then long sections on line breaks (ids come later)."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    sections = MarkdownHeaderTextSplitter(HEADERS, strip_headers=True).split_text(clean_markdown(text))
    # A document with a single H1 uses it as its title, not as a section of every chunk.
    skip_title = sum(1 for line in text.splitlines() if re.match(r"#\s", line)) == 1
    lines = RecursiveCharacterTextSplitter(
        chunk_size=chunk_chars, chunk_overlap=0, separators=["\n\n", "\n", ". ", " ", ""]
    )
    chunks: list[Chunk] = []
    for section in sections:
        path = _heading_path(section.metadata, skip_title)
        for piece in lines.split_text(section.page_content):
            if piece.strip():
                chunks.append(Chunk(piece.strip(), path, source, len(chunks)))
    return chunks


def with_ids(chunks: list[Chunk]) -> list[Chunk]:
    """Give each chunk an id from its source, section and text (and a counter for repeats)."""
    seen: dict[str, int] = {}
    out = []
    for c in chunks:
        digest = hashlib.sha256(f"{c.source}\0{c.section}\0{c.text}".encode()).hexdigest()[:24]
        seen[digest] = seen.get(digest, 0) + 1
        cid = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        out.append(Chunk(c.text, c.section, c.source, c.position, cid))
    return out


def load_corpus(corpus_dir: Path, chunk_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """Read and chunk every file of the corpus folder."""
    corpus_dir = Path(corpus_dir)
    chunks: list[Chunk] = []
    for path in corpus_files(corpus_dir):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CorpusError(f"cannot read {path}: {e}") from e
        source = path.relative_to(corpus_dir).as_posix()
        # A .txt file has no headings of its own: its chunks fall under the file's name.
        doc = split_markdown(text, source, chunk_chars)
        chunks.extend(c if c.section else Chunk(c.text, path.stem, source, c.position) for c in doc)
    return with_ids(chunks)
