"""`openai:<model>@<base url>`: any OpenAI-compatible server (vLLM, TGI, llama.cpp, serve-api).

LangChain's ChatOpenAI does the talking (timeouts, retries); this subclass adds
what the chain needs from a model (render, token counts, input window) and
bounded concurrency for batches, and turns failed requests into ModelError.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_openai import ChatOpenAI
from pydantic import Field

from assistant.errors import ModelError
from assistant.models.hf import plain_prompt
from assistant.models.options import GenerationOptions

API_KEY_VARS = ("COURSELAB_OPENAI_API_KEY", "OPENAI_API_KEY")


def parse_spec(spec: str) -> tuple[str, str]:
    """'openai:qwen@http://h:8000/v1' -> ('qwen', 'http://h:8000/v1')."""
    body = spec.removeprefix("openai:")
    model, sep, url = body.rpartition("@")
    if not sep or not model or not url.startswith(("http://", "https://")):
        raise ModelError(f"malformed model {spec!r}; expected openai:<model>@<http(s) base url>")
    return model, url.rstrip("/")


class RemoteChatModel(ChatOpenAI):
    """A chat model served over the OpenAI API, with courselab's model interface."""

    kind: str = "causal"
    options: GenerationOptions = Field(default_factory=GenerationOptions)
    context_window: int = 4096
    concurrency: int = Field(4, ge=1, le=256, description="requests in flight during a batch")

    def render(self, messages) -> str:
        return plain_prompt(messages)  # the server applies its own chat template

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # an estimate: the tokenizer lives on the server

    def input_window(self) -> int:
        return self.context_window

    def _generate(self, *args: Any, **kwargs: Any):
        try:
            return super()._generate(*args, **kwargs)
        except Exception as e:  # connection refused, timeout, a server answering garbage
            raise ModelError(f"request to {self.openai_api_base} failed: {e}") from e

    def _stream(self, *args: Any, **kwargs: Any):
        try:
            yield from super()._stream(*args, **kwargs)
        except Exception as e:
            raise ModelError(f"request to {self.openai_api_base} failed: {e}") from e

    def batch(self, inputs: list, config: Any = None, **kwargs: Any) -> list:
        """Concurrent requests, at most `concurrency` at a time."""
        config = {**(config or {}), "max_concurrency": self.concurrency} \
            if not isinstance(config, list) else config
        return super().batch(inputs, config, **kwargs)


def remote_model(spec: str, options: GenerationOptions) -> RemoteChatModel:
    model, url = parse_spec(spec)
    key = next((os.environ[v] for v in API_KEY_VARS if os.environ.get(v)), "not-needed")
    return RemoteChatModel(
        model=model, base_url=url, api_key=key, options=options, timeout=120, max_retries=2,
        max_tokens=options.max_new_tokens, temperature=options.temperature,
        top_p=options.top_p, seed=options.seed, stop=list(options.stop) or None)
