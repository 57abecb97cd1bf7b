"""Contextual compression: keep only the retrieved sentences that answer the question.

A 135M model copies what it is shown, so it is shown little: each retrieved
chunk is cut into sentences (runs of short list items stay together), every
sentence is scored against the question with the same embedder as the index,
and only the best few go into the prompt, in their original order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.retrieval import Hit
from assistant.text import cosine, plain_text

SHORT_ITEM = 80  # list items shorter than this are kept together as one unit
SHORT_SUB_ITEM = 100  # the same for an indented item: the steps or parts of the item above it
SHORT_LABEL = 80  # a line ending in ':' shorter than this labels the unit after it
_MARKER = re.compile(r"^\s*(\d+\.|[-*+]|[a-z]\.)\s+")
# a sentence ends at . ! ? before a capital, but not after an abbreviation ("token i.e. [CLS]")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\bi\.e\.)(?<!\be\.g\.)(?<!\betc\.)(?<!\bvs\.)\s+(?=[A-Z\[(])")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_RULE_CELL = re.compile(r"^\s*:?-+:?\s*$")
SHORT_LINK_LABEL = 60  # "BERT Implementation:" before a link


@dataclass(frozen=True)
class Passage:
    """The sentences of one hit that go to the model."""

    hit: Hit
    sentences: tuple[str, ...]
    score: float


def units(text: str) -> list[str]:
    """Sentences of a chunk; consecutive short list items are one unit, and a short
    label ending in ':' leads the unit after it.

    >>> units("1. Text\\n2. Image\\nLong sentence one. Long sentence two.")
    ['Text; Image', 'Long sentence one.', 'Long sentence two.']
    >>> units("3. **Training Signal**:\\n   - It comes from the loss.")
    ['Training Signal: It comes from the loss.']
    >>> units("| Tool | Use |\\n| :--: | --- |\\n| **LangChain** | LLM Workflows |")
    ['Tool: LangChain; Use: LLM Workflows']
    >>> units("BERT is an encoder.\\n16. Implementation: [Click here](https://x.org/nb)")
    ['BERT is an encoder.']
    """
    out: list[str] = []
    short_run, label = False, ""
    lines = plain_text("\n".join("" if link_only(raw) else raw
                                 for raw in text.split("\n"))).split("\n")
    header: list[str] = []
    for n, raw in enumerate(lines):
        if (cells := table_cells(raw)) is not None:
            if all(_RULE_CELL.match(c) for c in cells):
                continue
            following = table_cells(lines[n + 1]) if n + 1 < len(lines) else None
            if following and all(_RULE_CELL.match(c) for c in following):
                header = cells  # the row above the rule names the columns
            else:  # a row reads as its own sentence: "Tool: LangChain; Use: LLM Workflows"
                row = "; ".join(f"{h}: {c}" if h else c
                                for h, c in zip(header + [""] * len(cells), cells) if c)
                out.append(f"{label}{row}")  # the line introducing the table leads its first row
                label = ""
            short_run = False
            continue
        header = []
        line = _MARKER.sub("", raw).strip()
        if not line:
            continue
        if line.endswith(":") and len(line) < SHORT_LABEL:
            label, short_run = f"{label}{line} ", False
            continue
        short = SHORT_SUB_ITEM if raw[:1].isspace() else SHORT_ITEM
        if len(line) < short and _MARKER.match(raw):
            if short_run:  # (a label always ends a run)
                out[-1] = f"{out[-1]}; {line}"
            else:  # a label ("Data: Pretrained on:") leads the list it introduces
                out.append(f"{label}{line}")
                label = ""
            short_run = True
            continue
        short_run = False
        sentences = [s.strip() for s in _SENTENCE_END.split(line) if len(s.strip()) > 3]
        if sentences and label:
            sentences[0], label = f"{label}{sentences[0]}", ""
        out.extend(sentences)
    return out


def link_only(raw: str) -> bool:
    """A line that is only a markdown link after at most a short label: a pointer elsewhere,
    no course content ("16. BERT Implementation: [Click here to learn ...](https://...)").
    String scans, not a regex: a corpus line of any length is read once.

    >>> link_only("16. Implementation: [Click here](https://x.org/nb)"), link_only("See [a](b) too")
    (True, False)
    """
    line = _MARKER.sub("", raw, count=1).strip()
    start, close = line.find("["), line.find("](")
    if start < 0 or close < start or not line.endswith(")"):
        return False
    label, url = line[:start].strip(), line[close + 2:-1]
    return ((not label or (label.endswith(":") and len(label) <= SHORT_LINK_LABEL))
            and "]" not in line[start + 1:close] and not any(c in url for c in " ()[]"))


def table_cells(line: str) -> list[str] | None:
    """The cells of a markdown table row ('| a | b |' -> ['a', 'b']), or None for other lines."""
    m = _TABLE_ROW.match(line)
    return None if m is None else [c.strip() for c in m.group(1).split("|")]


def score_units(question_vector: list[float], hits: list[Hit], embedder
                ) -> tuple[list[tuple[Hit, str]], list[float]]:
    """Every sentence of the hits, as (hit, sentence), and its cosine to the question."""
    candidates = [(h, u) for h in hits for u in units(h.text)]
    if not candidates:
        return [], []
    vectors = embedder.embed_documents([f"{h.section}: {u}" for h, u in candidates])
    return candidates, [cosine(question_vector, v) for v in vectors]


def compress(candidates: list[tuple[Hit, str]], scores: list[float], hits: list[Hit],
             max_sentences: int = 4, keep_ratio: float = 0.8) -> tuple[list[Passage], float]:
    """The passages to show the model, and the best sentence similarity (for abstention).

    Sentences scoring at least `keep_ratio` of the best one are kept, at most
    `max_sentences` (neighbouring sentences made SmolLM2 worse: 0.25 vs 0.45 correct).
    """
    if not candidates:
        return [], -1.0
    best = max(scores)
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
    anchors = [i for i in ranked[:max_sentences] if scores[i] >= best * keep_ratio] or ranked[:1]
    keep = set(anchors)
    passages = []
    for hit in hits:
        chosen = [i for i, (h, _) in enumerate(candidates) if h is hit and i in keep]
        if chosen:
            passages.append(Passage(hit, tuple(candidates[i][1] for i in chosen),
                                    round(max(scores[i] for i in chosen), 4)))
    return passages, best


def format_context(passages: list[Passage], numbered: bool = False) -> str:
    """The passages as prompt text: one line of plain sentences per passage.

    Subtle: a 135M model copies any markup it is shown ("[3] Section ..."), so
    numbers and sections are only added when `numbered` (for citing templates).
    """
    lines = [" ".join(_sentence(s) for s in p.sentences) for p in passages]
    if numbered:
        lines = [f"[{n}] {p.hit.section}: {line}"
                 for n, (p, line) in enumerate(zip(passages, lines), 1)]
    return "\n".join(lines)


def _sentence(text: str) -> str:
    return text if text[-1:] in ".!?" else f"{text}."
