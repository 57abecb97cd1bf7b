"""Escaping for everything the app shows: no HTML and no Markdown link or image from a
question, an answer or a file takes effect (`![](http://attacker/x)` would make every reader's
browser fetch that address)."""

from __future__ import annotations

import html

from assistant.text import plain_text

SNIPPET_CHARS = 140


_MARKDOWN = str.maketrans({"[": "&#91;", "]": "&#93;"})


def escape(text: str) -> str:
    """Text as inert markup: '<script>' shows as text and never runs, and so does a Markdown
    link or image, whose brackets become character references (they still read as brackets).

    >>> escape("![x](http://a/b) <b>")
    '!&#91;x&#93;(http://a/b) &lt;b&gt;'
    """
    return html.escape(str(text), quote=True).translate(_MARKDOWN)


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(plain_text(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"
