"""A deterministic fake chat model for tests: queued replies, a history, real streaming."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from assistant.models.hf import plain_prompt
from assistant.models.options import GenerationOptions


class FakeChatModel(BaseChatModel):
    """Replies from `replies` in order; when empty, quotes the line of the last message
    that shares most words with its last line (the question).

    Every prompt it receives is kept in `history`, so tests can check what a model saw.
    """

    model_name: str = "fake"
    kind: str = "causal"
    replies: list[str] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list)
    context_window: int = 100_000  # in words, like count_tokens
    options: GenerationOptions = Field(default_factory=GenerationOptions)

    @property
    def _llm_type(self) -> str:
        return "courselab-fake"

    def enqueue(self, *replies: str) -> None:
        self.replies.extend(replies)

    def render(self, messages: list[BaseMessage]) -> str:
        return plain_prompt(messages)

    def input_window(self) -> int:
        return self.context_window

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _reply(self, messages: list[BaseMessage]) -> str:
        prompt = self.render(messages)
        self.history.append(prompt)
        if self.replies:
            return self.replies.pop(0)
        return _extract(str(messages[-1].content))

    def _usage(self, messages: list[BaseMessage], text: str) -> dict:
        n_in, n_out = self.count_tokens(self.render(messages)), self.count_tokens(text)
        return {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = self._reply(messages)
        msg = AIMessage(content=text, usage_metadata=self._usage(messages, text),
                        response_metadata={"model_name": self.model_name, "device": "cpu"})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
                ) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages)
        for piece in re.findall(r"\S+\s*", text):
            if run_manager:
                run_manager.on_llm_new_token(piece)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", usage_metadata=self._usage(messages, text), chunk_position="last",
            response_metadata={"model_name": self.model_name, "device": "cpu"}))


def _extract(text: str) -> str:
    """The line sharing most words with the last line (the question), else "I don't know."."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return "I don't know."
    words = lambda text: set(re.findall(r"\w+", text.lower()))  # noqa: E731
    question = words(lines[-1])
    best = max(lines[:-1], key=lambda line: len(words(line) & question))
    return best if words(best) & question else "I don't know."
