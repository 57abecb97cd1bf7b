"""Escaping for everything the app shows: no HTML and no Markdown link or image from a
question, an answer or a file takes effect (`![](http://attacker/x)` would make every reader's
browser fetch that address)."""

from __future__ import annotations

import html

from assistant.text import keywords, plain_text

SNIPPET_CHARS = 140
# answers in flight at once across the app: concurrent questions to one local model then
# share its decode batches (assistant.models.scheduler) instead of queueing one by one
ANSWERS_AT_ONCE = 32


_MARKDOWN = str.maketrans({"[": "&#91;", "]": "&#93;"})


def escape(text: str) -> str:
    """Text as inert markup: '<script>' shows as text and never runs, and so does a Markdown
    link or image, whose brackets become character references (they still read as brackets).

    >>> escape("![x](http://a/b) <b>")
    '!&#91;x&#93;(http://a/b) &lt;b&gt;'
    """
    return html.escape(str(text), quote=True).translate(_MARKDOWN)


def snippet(text: str, limit: int = SNIPPET_CHARS, near: str = "") -> str:
    """The text flattened to at most `limit` characters; with `near` (a search), from a little
    before the first of its words that the text holds, so a hit shows why it matched.

    >>> snippet("one two three four five six seven eight nine", 20, near="seven")
    '… six seven eight…'
    """
    flat = " ".join(plain_text(text).split())
    if len(flat) <= limit:
        return flat
    lowered = flat.lower()
    found = [i for i in (lowered.find(w) for w in keywords(near) if len(w) >= 3) if i >= 0]
    start = max(0, min(found) - limit // 4) if found else 0
    if start:
        start = flat.find(" ", start) + 1 or start  # from a word's start
    cut = flat[start:start + limit - 2]
    if start + limit - 2 < len(flat):
        cut = cut.rsplit(" ", 1)[0] + "…"
    return ("… " if start else "") + cut


def short_section(section: str, earlier: list[str], part_chars: int = 48) -> str:
    """A section path with the head it shares with an earlier one as '…', long parts cut.

    >>> short_section("Models > 1. BERT > Training", ["Models > 1. BERT > Tasks"])
    '… > Training'
    >>> short_section("Models", ["Models"])
    '″ (same section)'
    """
    if section in earlier:
        return "″ (same section)"
    parts = section.split(" > ")
    shared = max((_common(parts, e.split(" > ")) for e in earlier), default=0)
    shared = min(shared, len(parts) - 1)  # the last part is always shown
    shown = [p if len(p) <= part_chars else p[: part_chars - 1].rstrip() + "…"
             for p in parts[shared:]]
    return " > ".join((["…"] if shared else []) + shown)


def _common(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
