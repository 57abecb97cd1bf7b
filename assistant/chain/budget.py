"""Fit the retrieved context into a model's input window.

The lowest-ranked passages go first, then the last one left is shortened;
the instructions and the question are never cut. The result says what was
dropped, so the sources list only what the model saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from assistant.chain.compress import Passage
from assistant.errors import InputError


@dataclass
class Budget:
    """How the prompt was fitted: its size, the limit, and what had to go."""

    limit: int
    prompt_tokens: int
    dropped: list[str] = field(default_factory=list)  # chunk ids, lowest-ranked first
    shortened: bool = False

    def to_dict(self) -> dict:
        return {"limit": self.limit, "prompt_tokens": self.prompt_tokens,
                "dropped": self.dropped, "shortened": self.shortened}


def fit(passages: list[Passage], tokens: Callable[[list[Passage]], int], limit: int
        ) -> tuple[list[Passage], Budget]:
    """The passages that fit in `limit` tokens, as counted by `tokens(passages)`."""
    kept, dropped = list(passages), []
    size = tokens(kept)
    while size > limit and len(kept) > 1:
        dropped.append(kept.pop().hit.chunk_id)
        size = tokens(kept)
    shortened = False
    while size > limit and kept:
        last = _shorter(kept[-1])
        if last is None:
            dropped.append(kept.pop().hit.chunk_id)
        else:
            kept[-1] = last
        shortened = True
        size = tokens(kept)
    if size > limit:
        raise InputError(f"the question and instructions alone take {size} tokens; "
                         f"the model's input window is {limit}")
    return kept, Budget(limit, size, dropped, shortened)


def _shorter(passage: Passage) -> Passage | None:
    """The passage without its last sentence, or its only sentence cut by a quarter of its words."""
    sentences = list(passage.sentences)
    if len(sentences) > 1:
        return replace(passage, sentences=tuple(sentences[:-1]))
    words = sentences[0].split()
    if len(words) < 2:
        return None
    # subtle: the ellipsis joins the last word, so every call strictly shortens the text
    return replace(passage, sentences=(" ".join(words[: len(words) * 3 // 4]) + "…",))
