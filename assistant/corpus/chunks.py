"""Read the course files and split them into heading-aware, list-aware chunks.

A chunk never straddles a heading; inside a section, whole list items (with
their sub-bullets) are packed together up to a size limit, and a long item is
cut between its lines with its label repeated, so every chunk reads on its own.
Each chunk keeps its heading path ("Popular Modern LLMs > 1. BERT (...)") and an
id derived from its content, so re-indexing an unchanged corpus embeds nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import CorpusError
from assistant.text import LINK, plain_text

SUFFIXES = (".md", ".txt")
CHUNK_CHARS = 700

_IMG = re.compile(r"<img\b[^<>]{0,2000}>", re.IGNORECASE)  # bounded: linear on '<img <img ...'
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ITEM = re.compile(r"^(\d+\.|[-*+]|\*\*[a-z]\.\*\*|[a-z]\.)\s+")


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
        """What gets embedded: the heading path, then the text without markup."""
        return f"{self.section}\n{plain_text(self.text)}" if self.section else plain_text(self.text)

    def metadata(self) -> dict:
        return {"section": self.section, "source": self.source, "position": self.position}


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every .md/.txt file under the corpus folder, in a stable order."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    files = sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise CorpusError(f"no .md or .txt files in corpus folder: {corpus_dir}")
    return files


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading path, lines) per section; a document's single H1 is its title, not a section."""
    lines = _IMG.sub("", text).split("\n")
    single_title = sum(1 for line in lines if re.match(r"#\s", line)) == 1
    path: dict[int, str] = {}
    out: list[tuple[str, list[str]]] = []
    body: list[str] = []

    def flush():
        if any(line.strip() for line in body):
            levels = sorted(path)[1:] if single_title and 1 in path else sorted(path)
            out.append((" > ".join(path[k] for k in levels), list(body)))

    for line in lines:
        m = _HEADING.match(line)
        if not m:
            body.append(line.rstrip())
            continue
        flush()
        body = []
        level = len(m.group(1))
        path = {k: v for k, v in path.items() if k < level}
        path[level] = plain_text(m.group(2))
    flush()
    return out


def _blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Top-level blocks: a list item with everything indented under it, or a paragraph."""
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if not line.strip():
            if out and out[-1][0] == "para":
                out.append(("gap", []))
            continue
        indented = line[:1].isspace()
        if not indented and _ITEM.match(line):
            out.append(("item", [line]))
        elif indented and out and out[-1][0] == "item" or out and out[-1][0] == "para":
            out[-1][1].append(line)
        else:
            out.append(("para", [line]))
    return [(kind, block) for kind, block in out if block]


def _label(line: str) -> str:
    """What a continuation piece of a long item starts with: '1. **Autoencoding**'."""
    s = LINK.sub(r"\1", line.strip())
    m = re.match(r"^(\S+\s+\*\*[^*]+\*\*:?)", s)
    if m and len(m.group(1)) < 120:
        return m.group(1)
    marker = _ITEM.match(s)
    prefix = marker.group(0) if marker else ""
    first = prefix + re.split(r"(?<=[.:?!])\s", s[len(prefix):], maxsplit=1)[0]
    return first if len(first) <= 120 else first[:117] + "..."


def _is_sublabel(block: list[str]) -> bool:
    """A one-line bold or ':'-ended paragraph before a list ('**Autoencoding Task**:')."""
    text = block[0].strip()
    return len(block) == 1 and len(text) < 60 and (
        text.endswith(":") or re.fullmatch(r"\*\*[^*]+\*\*:?", text) is not None)


def _units(path: str, lines: list[str], limit: int) -> list[tuple[str, str]]:
    """(path, text) units of one section: whole blocks, long ones cut with their label."""
    units, sub = [], None
    for kind, block in _blocks(lines):
        if kind == "para" and _is_sublabel(block):
            sub = plain_text(block[0]).rstrip(":").strip()
            continue
        if kind == "para":
            sub = None
        where = f"{path} > {sub}" if sub and path else (sub or path)
        text = "\n".join(block).strip()
        if len(text) <= limit:
            units.append((where, text))
            continue
        label, piece = _label(block[0]), ""
        for line in [block[0].strip(), *block[1:]]:
            if piece and len(piece) + len(line) + 1 > limit:
                units.append((where, piece))
                piece = f"{label}\n{line}"
            else:
                piece = f"{piece}\n{line}" if piece else line
        if piece:
            units.append((where, piece))
    return units


def _pack(units: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """Join consecutive units of the same path while they fit in `limit` characters."""
    out, path, text = [], None, ""
    for where, unit in units:
        if text and (where != path or len(text) + len(unit) + 1 > limit):
            out.append((path, text))
            text = ""
        text, path = (f"{text}\n{unit}" if text else unit), where
    if text:
        out.append((path, text))
    return out


def _is_contents(lines: list[str], headings: list[str]) -> bool:
    """A table of contents: most of its list items repeat the document's (sorted) headings."""
    items = [_key(_ITEM.sub("", line.strip())) for line in lines if _ITEM.match(line.strip())]
    items = [i for i in items if i]
    # the headings that start with an item are the sorted block from bisect_left on
    hits = sum(headings[j].startswith(i) for i in items
               if (j := bisect.bisect_left(headings, i)) < len(headings))
    return bool(items) and hits > 0.6 * len(items)


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", re.sub(r"\s+", " ", plain_text(text).lower())).strip()


def split_markdown(text: str, source: str, limit: int = CHUNK_CHARS) -> list[Chunk]:
    """Chunks of one document, in order (ids are given by `with_ids`)."""
    parts = sections(text)
    headings = sorted({_key(h) for path, _ in parts for h in path.split(" > ")})
    chunks: list[Chunk] = []
    for path, lines in parts:
        if _is_contents(lines, headings):
            continue  # it would match every question and answer none
        for where, piece in _pack(_units(path, lines, limit), limit):
            chunks.append(Chunk(piece.strip(), where, source, len(chunks)))
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


def load_corpus(corpus_dir: Path, limit: int = CHUNK_CHARS) -> list[Chunk]:
    """Read and chunk every file of the corpus folder."""
    corpus_dir = Path(corpus_dir)
    chunks: list[Chunk] = []
    for path in corpus_files(corpus_dir):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CorpusError(f"cannot read {path}: {e}") from e
        source = path.relative_to(corpus_dir).as_posix()
        # A file without headings (plain .txt) files its chunks under the file's name.
        chunks.extend(c if c.section else Chunk(c.text, path.stem, source, c.position)
                      for c in split_markdown(text, source, limit))
    return with_ids(chunks)
