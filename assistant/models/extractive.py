"""The extractive baseline: a "model" whose answer is the course's own quote.

It never generates; the chain sees `extractive = True` and answers with the sentences
grounding chose. Run next to a real model, it measures what the model adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.models.options import GenerationOptions


@dataclass
class ExtractiveModel:
    """Stands where a chat model stands; the chain answers with the quote instead."""

    model_name: str = "extractive"
    kind: str = "extractive"
    extractive: bool = True
    options: GenerationOptions = field(default_factory=GenerationOptions)

    def input_window(self) -> int:
        return 1_000_000  # nothing is rendered, so nothing has to fit

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def load(self) -> None:
        """Nothing to load."""
