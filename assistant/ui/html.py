"""Escaping for everything the app shows: no HTML from a question, an answer or a file runs."""

from __future__ import annotations

import html

from assistant.text import plain_text

SNIPPET_CHARS = 140


def escape(text: str) -> str:
    """Text as inert markup: '<script>' shows as text and never runs."""
    return html.escape(str(text), quote=True)


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(plain_text(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"
