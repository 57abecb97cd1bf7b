"""`courselab serve-api`: the local models behind an OpenAI-compatible HTTP API.

`/v1/models` and `/v1/chat/completions` (with and without streaming), so that
any OpenAI client, or courselab's own `openai:` backend on another machine,
can use them. Generation on one model is serialised by the model's own lock.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import CourselabError, ModelError, OptionsError, UnknownModelError


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat request that local models honour; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False

    def options(self) -> dict:
        limit = self.max_completion_tokens or self.max_tokens
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        values = {"max_new_tokens": limit, "temperature": self.temperature, "top_p": self.top_p,
                  "seed": self.seed, "stop": tuple(stop) if stop else None}
        return {k: v for k, v in values.items() if v is not None}

    def lc_messages(self) -> list:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        return [kinds[m.role](m.content) for m in self.messages]


def create_app(names: list[str], cache_dir: Path):
    """A FastAPI app serving the registry models in `names` (loaded on first request)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    from assistant.models import get_model

    app = FastAPI(title="courselab OpenAI-compatible API")
    loaded: dict[str, object] = {}

    def model_for(name: str):
        if name not in names:
            raise UnknownModelError(f"model {name!r} is not served; served: {', '.join(names)}")
        if name not in loaded:
            loaded[name] = get_model(name, cache_dir)
        return loaded[name]

    @app.exception_handler(CourselabError)
    def _error(request, exc: CourselabError):
        status = 404 if isinstance(exc, UnknownModelError) else (
            400 if isinstance(exc, OptionsError) else 500)
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse({"error": {"message": str(exc), "type": kind, "code": status}}, status)

    @app.get("/v1/models")
    def list_models():
        return {"object": "list", "data": [
            {"id": n, "object": "model", "created": 0, "owned_by": "courselab"} for n in names]}

    @app.post("/v1/chat/completions")
    def chat(request: ChatRequest):
        model = model_for(request.model)
        options = request.options()
        if request.stream:
            return StreamingResponse(_sse(model, request, options), media_type="text/event-stream")
        reply = model.invoke(request.lc_messages(), **options)
        usage = reply.usage_metadata or {}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": request.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.content}}],
                "usage": {"prompt_tokens": usage.get("input_tokens", 0),
                          "completion_tokens": usage.get("output_tokens", 0),
                          "total_tokens": usage.get("total_tokens", 0)}}

    return app


def _sse(model, request: ChatRequest, options: dict):
    """Server-sent events in OpenAI's chunk format, ending with [DONE]."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(delta: dict, finish: str | None = None) -> str:
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                 "model": request.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": ""})
    try:
        for chunk in model.stream(request.lc_messages(), **options):
            if chunk.content:
                yield event({"content": chunk.content})
    except ModelError as e:
        yield f"data: {json.dumps({'error': {'message': str(e), 'type': 'server_error'}})}\n\n"
    yield event({}, "stop")
    yield "data: [DONE]\n\n"
