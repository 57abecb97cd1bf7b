"""Which demo illustrates which course section, found from the corpus's missing figures.

The course refers to nine images under `data/images/` that are not shipped; each maps
to the demo that draws it live. `demos_for_section(path)` gives the demos for a section
heading path (a subsection inherits its parent's figures), for the chat's answer cards
and the corpus browser; `lab_link` is the URL that opens the Course lab pre-filled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import urlencode

from assistant.corpus.chunks import corpus_files, sections
from assistant.errors import CourselabError
from assistant.text import plain_text

# bounded, so linear on any upload ('<img <img <img ...'); the figure's name is the file's stem
_IMG_SRC = re.compile(r"<img\b[^<>]{0,2000}?\bsrc=\"([^\"<>]{1,300})\"[^<>]{0,2000}>", re.IGNORECASE)
_MARK = "\x00figure:"
PREFILL_CHARS = 300


@dataclass(frozen=True)
class Demo:
    """One live demo: its key (CLI command, URL value), title and the course section it draws."""

    key: str
    title: str
    section: str  # the course section, as named in the caption
    figures: tuple[str, ...]  # the course's missing images it stands in for
    headings: tuple[str, ...] = ()  # section titles it illustrates without a figure

    @property
    def caption(self) -> str:
        shown = ", ".join(self.figures) if self.figures else "no figure in the course"
        return f"Course section: {self.section} (figure: {shown})"

    def to_dict(self) -> dict:
        return {"key": self.key, "title": self.title, "section": self.section,
                "figures": list(self.figures)}


DEMOS: dict[str, Demo] = {d.key: d for d in [
    Demo("tokens", "Tokenization", "Popular Modern LLMs > 1. BERT: out-of-vocabulary words",
         ("bert_oov",)),
    Demo("next-token", "Next-token prediction", "AutoEncoding Vs AutoRegressive Task; 2. GPT",
         (), ("AutoEncoding Vs AutoRegressive Task", "2. GPT (Generative Pre-Trained Transformer)",
              "What is Language Modeling?")),
    Demo("attention", "Attention", "Attention is all you need; A little bit about Transformers",
         ("attention_mechanism_full", "attention_mechanism_isolated_for_word_its")),
    Demo("fill-mask", "Masked vs next-token", "1. BERT: Masked Language Modeling",
         ("bert_language_model_task",), ("Auto-Encoding Task vs Masked Language Modeling (MLM)",)),
    Demo("architecture", "Architecture", "Introducing Transformer Architecture; 3. T5",
         ("transformer", "t5")),
    Demo("finetune", "Transfer learning and fine-tuning",
         "Pre-Training, Transfer Learning and Fine-Tuning; 1. BERT: classification",
         ("transfer_learning", "fine_tuning_loop", "bert_classification")),
    Demo("embeddings", "Embeddings", "What are LLMs? (embeddings)", (), ("What are LLMs?",)),
]}


def figure_sections(corpus_dir: Path) -> dict[str, tuple[str, ...]]:
    """Section path -> the missing figures referenced in it, for every corpus file."""
    files = corpus_files(corpus_dir)
    return _scan(tuple((str(p), p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=8)
def _scan(files: tuple[tuple[str, int], ...]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for name, _ in files:
        # subtle: chunks.sections() drops <img> tags; a marker line keeps their place
        text = _IMG_SRC.sub(lambda m: f"\n{_MARK}{PurePosixPath(m.group(1)).stem}\n",
                            Path(name).read_text())
        for path, lines in sections(text):
            for line in lines:
                if line.startswith(_MARK):
                    found.setdefault(path, []).append(line[len(_MARK):].strip().lower())
    return {path: tuple(figs) for path, figs in found.items()}


def demos_for_section(section: str, corpus_dir: Path | None = None) -> list[Demo]:
    """The demos that draw a section's figures ("See it live: attention"), in DEMOS order.

    >>> [d.key for d in demos_for_section("Popular Modern LLMs > 2. GPT (Generative Pre-Trained "
    ...                                   "Transformer)")]
    ['next-token']
    """
    section = plain_text(section or "").strip()
    if not section:
        return []
    figures: set[str] = set()
    try:
        located = figure_sections(corpus_dir or _default_corpus())
    except (CourselabError, OSError):
        located = {}
    for path, figs in located.items():
        if section == path or section.startswith(path + " > "):
            figures.update(figs)
    last = section.rsplit(" > ", 1)[-1]
    return [d for d in DEMOS.values()
            if figures.intersection(d.figures) or any(h == last or section.endswith(h)
                                                      for h in d.headings)]


def _default_corpus() -> Path:
    from assistant.config import Settings

    return Settings().corpus_dir


def prefill_text(key: str, text: str) -> str:
    """What a demo's input box starts with when opened from a question (fill-mask gets a blank)."""
    words = " ".join(str(text or "").split())[:PREFILL_CHARS]
    if key != "fill-mask" or "[MASK]" in words:
        return words
    found = list(re.finditer(r"[^\W\d_]{4,}", words))  # the last word of 4+ letters
    if not found:
        return words
    m = found[-1]
    return words[:m.start()] + "[MASK]" + words[m.end():]


def lab_link(key: str, text: str = "") -> str:
    """The app URL (relative) that opens the Course lab on a demo, pre-filled with `text`."""
    if key not in DEMOS:
        raise KeyError(key)
    query = {"lab": key}
    if text:
        query["text"] = prefill_text(key, text)
    return "?" + urlencode(query)
