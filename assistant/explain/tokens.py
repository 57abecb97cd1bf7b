"""Tokenization side by side: BERT's WordPiece (MiniLM), SmolLM2's BPE, Gemma's SentencePiece.

Each tokenizer's pieces, ids and count, and which words fell apart into several pieces
(BERT marks the continuations with `##`). Only tokenizers load, never weights (bar
Gemma's, which comes with its model from the registry when it is installed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.errors import InputError
from assistant.explain import loaded
from assistant.explain.plots import caption, figure, label

MAX_CHARS = 2000
SHOWN_PIECES = 40
NAMES = {loaded.ENCODER: "MiniLM · BERT WordPiece", loaded.CAUSAL: "SmolLM2 · byte-level BPE",
         loaded.GEMMA: "Gemma 3 · SentencePiece"}


@dataclass
class Tokenized:
    """One tokenizer's view of the text."""

    model: str
    scheme: str
    pieces: list[str]
    ids: list[int]
    split_words: dict[str, list[str]]  # word -> its pieces, for words cut into several
    in_split: list[bool] = field(default_factory=list)  # per piece: part of a split word?

    def to_dict(self) -> dict:
        return {"model": self.model, "scheme": self.scheme, "count": len(self.ids),
                "pieces": self.pieces, "ids": self.ids, "split_words": self.split_words}


@dataclass
class TokensResult:
    text: str
    rows: list[Tokenized]
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it is not shown

    def to_dict(self) -> dict:
        return {"text": self.text, "tokenizers": [r.to_dict() for r in self.rows],
                "skipped": self.skipped}

    def figure(self):
        return draw(self)


def check_text(text: str, limit: int = MAX_CHARS, strip: bool = True) -> str:
    """Non-empty text within `limit` characters (stripped unless a trailing space matters)."""
    text = str(text or "")
    if not text.strip():
        raise InputError("give some text")
    text = text.strip() if strip else text
    if len(text) > limit:
        raise InputError(f"the text has {len(text)} characters; the lab takes up to {limit}")
    return text


_WORD = re.compile(r"\w+(?:['’]\w+)*")


def tokenize(tokenizer, text: str, model: str = "", scheme: str = "") -> Tokenized:
    """The pieces of `text` (no special tokens) and the words that were cut into several.

    Words are runs of letters and digits in the text; a piece belongs to every word its
    characters overlap (found from the offsets, so it works for any tokenizer).
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    pieces = tokenizer.convert_ids_to_tokens(ids)
    offsets = enc["offset_mapping"]
    split: dict[str, list[str]] = {}
    in_split = [False] * len(ids)
    i = 0
    for m in _WORD.finditer(text):
        while i < len(ids) and offsets[i][1] <= m.start():
            i += 1
        idx = []
        j = i
        while j < len(ids) and offsets[j][0] < m.end():
            if offsets[j][1] > m.start():
                idx.append(j)
            j += 1
        if len(idx) > 1:
            split.setdefault(m.group(0), [pieces[k] for k in idx])
            for k in idx:
                in_split[k] = True
    return Tokenized(model, scheme, pieces, ids, split, in_split)


def compare(text: str, models: tuple[str, ...] = tuple(NAMES), cache_dir=None) -> TokensResult:
    """`text` through each tokenizer that is installed; the others are listed as skipped."""
    text = check_text(text)
    rows, skipped = [], {}
    for name in models:
        if not loaded.available(name):
            skipped[name] = "not installed here"
            continue
        tok = loaded.tokenizer(name, cache_dir)
        rows.append(tokenize(tok, text, name, NAMES.get(name, name)))
    return TokensResult(text, rows, skipped)


def draw(result: TokensResult):
    """One row of coloured boxes per tokenizer; pieces of split words in orange."""
    rows = result.rows or []
    fig, ax = figure(11, 1.4 + 1.1 * max(len(rows), 1))
    palette = ("#cfe3ff", "#e3f2d9")
    right = 16.0
    for r, row in enumerate(rows):
        y = len(rows) - r
        x = 0.0
        for i, piece in enumerate(row.pieces[:SHOWN_PIECES]):
            text = label(piece, 14)
            width = max(0.6, 0.16 * len(text) + 0.3)
            color = "#ffd8a8" if row.in_split[i] else palette[i % 2]
            ax.add_patch(_box(x, y - 0.35, width, 0.7, color))
            ax.text(x + width / 2, y, text, ha="center", va="center", fontsize=8, family="monospace")
            x += width + 0.08
        more = f" (+{len(row.pieces) - SHOWN_PIECES} more)" if len(row.pieces) > SHOWN_PIECES else ""
        ax.text(x + 0.1, y, f"{len(row.ids)} tokens{more}", va="center", fontsize=8)
        right = max(right, x + 2.5)
    ax.set_yticks(range(1, len(rows) + 1), [label(r.scheme) for r in reversed(rows)])
    ax.set_ylim(0.3, len(rows) + 0.7)
    ax.set_xlim(-0.2, right)
    ax.set_xlabel("pieces in order · orange: a word that fell apart into several pieces · "
                  "Ġ / ▁ mark a leading space")
    ax.set_xticks([])
    ax.set_title(label(f"Tokenization of: {result.text}", 90), fontsize=10)
    note = "; ".join(f"{m} skipped: {why}" for m, why in result.skipped.items())
    caption(fig, "tokens", note)
    return fig


def _box(x, y, w, h, color):
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="#667")
