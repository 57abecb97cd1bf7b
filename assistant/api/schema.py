"""The request shapes serve-api accepts, with every bound in one place.

Anything outside these bounds is refused with a 400 in OpenAI's error shape
before a model is touched: a request never reaches generation with an unbounded
seed, an empty stop string or thousands of messages.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_BODY_BYTES = 1_000_000  # a request body, as sent
MAX_MESSAGES = 256
MAX_STOP = 4  # OpenAI's own limit
MAX_STOP_CHARS = 64
MAX_SEED = 2**32 - 1
MAX_NEW_TOKENS = 4096
MIN_TEMPERATURE = 1e-2  # below it, a temperature is greedy decoding (0)


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict:
    """OpenAI's error object: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat request that courselab honours; other fields are ignored.

    `k` and `retrieval_mode` are courselab's own fields for the `courselab/<template>`
    models (the course assistant); bare models refuse them. Types are strict, as OpenAI's
    are: "5" is no max_tokens, "yes" no stream, true no integer.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    stream: bool = False
    k: int | None = Field(None, ge=1, le=20, description="passages to retrieve (assistant models)")
    retrieval_mode: Literal["hybrid", "dense"] | None = None

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, value):
        # subtle: a tiny temperature (1e-300) overflows the logits' division: it means greedy
        return 0.0 if value is not None and value < MIN_TEMPERATURE else value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value):
        stops = [value] if isinstance(value, str) else value
        if stops is None:
            return None
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings")
        if any(not s or len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"each stop string has 1 to {MAX_STOP_CHARS} characters")
        return stops

    @property
    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def options(self) -> dict:
        """Generation options for a bare model; only what the request set."""
        values = {"max_new_tokens": self.limit, "temperature": self.temperature,
                  "top_p": self.top_p, "seed": self.seed,
                  "stop": tuple(self.stop) if self.stop else None}
        return {k: v for k, v in values.items() if v is not None}

    def lc_messages(self) -> list:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "developer": SystemMessage, "user": HumanMessage,
                 "assistant": AIMessage}
        return [kinds[m.role](m.text) for m in self.messages]

    def question(self) -> str:
        """The last user message: what the course assistant answers."""
        return next((m.text for m in reversed(self.messages) if m.role == "user"), "")
