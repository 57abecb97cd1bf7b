"""`courselab serve-api`: the local models and the course assistant behind an OpenAI-compatible API.

`/v1/models` and `/v1/chat/completions` (with and without streaming), so that any
OpenAI client (promptfoo, courselab's own `openai:` backend on another machine) can
use them. Besides the bare registry models, `courselab/<template>` is the whole
course assistant (retrieval, template, abstention) with its answer card in the
response's `courselab` field. Every error is in OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`.
"""


import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import uuid

from assistant.api.backends import ContextLengthError, ModelPool, Reply
from assistant.api.schema import MAX_BODY_BYTES, ChatRequest, error_body
from assistant.errors import CourselabError, InputError, UnknownModelError
from assistant.models.scheduler import ModelBusyError

POLL_S = 0.25  # how often a waiting stream checks whether its client is still there
MAX_ERROR_CHARS = 2000
# the folders of a path in an error ('/srv/prompts/' of '/srv/prompts/a.yaml'): linear, as each
# repeat starts at a '/' that the class before it cannot take
_FOLDERS = re.compile(r"(?<![\w.:/])~?(?:/[^/\s:;,'\"()]*)+/")
_END = object()


def create_app(pool: ModelPool, api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES):
    """A FastAPI app serving `pool`'s names; `api_key` (when set) is required as a Bearer token."""
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="courselab OpenAI-compatible API", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(_Guard, api_key=api_key, max_body_bytes=max_body_bytes)
    _answer_errors(app)

    @app.get("/v1/models")
    def list_models():
        return {"object": "list", "data": [
            {"id": n, "object": "model", "created": 0, "owned_by": "courselab"}
            for n in pool.served()]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, http: Request):
        backend = await run_in_threadpool(pool.get, body.model, body.k, body.retrieval_mode)
        await run_in_threadpool(backend.check, body)
        if body.stream:
            queue: asyncio.Queue = asyncio.Queue()
            halt = threading.Event()
            _produce(backend, body, queue, asyncio.get_running_loop(), halt)
            # subtle: the first item is awaited before the 200 goes out, so a busy model (or
            # any refusal before the first token) is an HTTP error, not an event in a stream
            first = await _next(queue, http)
            if isinstance(first, Exception):
                halt.set()
                raise first
            return StreamingResponse(_sse(body, queue, http, halt, first),
                                     media_type="text/event-stream")
        return _completion(body, await run_in_threadpool(backend.complete, body))

    return app


def _answer_errors(app) -> None:
    """Every error as OpenAI's error body: never a traceback or FastAPI's {"detail": ...}."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(CourselabError)
    def _error(request, exc: CourselabError):
        status, code = _status(exc)
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse(error_body(_public(str(exc)), kind, code), status)

    @app.exception_handler(RequestValidationError)
    def _invalid(request, exc: RequestValidationError):
        return JSONResponse(error_body(_describe(exc.errors()), code="invalid_request"), 400)

    @app.exception_handler(HTTPException)
    def _http(request, exc: HTTPException):
        return JSONResponse(error_body(str(exc.detail), code=str(exc.status_code)), exc.status_code)

    @app.exception_handler(Exception)
    def _crash(request, exc: Exception):
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", "server_error"), 500)


def _completion(body: ChatRequest, reply) -> dict:
    """A whole (not streamed) chat completion in OpenAI's shape."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": body.model,
            "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                         "message": {"role": "assistant", "content": reply.text}}],
            "usage": reply.usage(), **reply.extra}


def _status(exc: CourselabError) -> tuple[int, str | None]:
    if isinstance(exc, UnknownModelError):
        return 404, "model_not_found"
    if isinstance(exc, ContextLengthError):
        return 400, "context_length_exceeded"
    if isinstance(exc, ModelBusyError):
        return 503, "model_busy"  # the model's queue is full: try again
    if isinstance(exc, InputError) or type(exc).__name__ in ("OptionsError", "TemplateError"):
        return 400, "invalid_request"
    return 500, None


def _public(message: str) -> str:
    """An error for a client: the server's folders left out of any path in it
    ('/home/ada/course/prompts/broken.yaml: invalid YAML' -> 'broken.yaml: invalid YAML').

    >>> _public("/srv/x/prompts/broken.yaml: invalid YAML; see ~/notes/a.md")
    'broken.yaml: invalid YAML; see a.md'
    >>> _public("cannot reach http://10.0.0.5:8000/v1 (a/b testing)")
    'cannot reach http://10.0.0.5:8000/v1 (a/b testing)'
    """
    return _FOLDERS.sub("", message[:MAX_ERROR_CHARS])


def _describe(errors) -> str:
    """Pydantic's errors as one short line: 'seed: Input should be less than ...; ...'."""
    parts = []
    for err in list(errors)[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {str(err.get('msg', 'invalid'))[:200]}")
    return "invalid request: " + "; ".join(parts)


async def _sse(body: ChatRequest, queue: asyncio.Queue, http, halt: threading.Event, first):
    """Server-sent events in OpenAI's chunk format, ending with [DONE].

    The backend runs in a thread (`_produce`; `first` is its first item); when the client
    goes away (or Starlette cancels this generator) the thread is told to stop, which
    closes the model's stream and so ends generation at the next token, not at max_tokens.
    """
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                 "model": body.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
        return f"data: {json.dumps(chunk)}\n\n"

    try:
        yield event({"role": "assistant", "content": ""})
        item = first
        while item is not _END and item is not None:  # None: the client has left
            if isinstance(item, Exception):  # failed after the first token
                message = _public(str(item)) if isinstance(item, CourselabError) else "internal error"
                yield f"data: {json.dumps(error_body(message, 'server_error'))}\n\n"
                break
            if isinstance(item, Reply):
                if item.text:
                    yield event({"content": item.text})
                yield event({}, item.finish_reason, {"usage": item.usage(), **item.extra})
            elif item:
                yield event({"content": item})
            item = await _next(queue, http)
        yield "data: [DONE]\n\n"
    finally:
        halt.set()


def _produce(backend, body: ChatRequest, queue: asyncio.Queue, loop, halt: threading.Event) -> None:
    """Iterate the backend's stream in a thread, handing items to the event loop."""

    def put(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening
            halt.set()

    def run() -> None:
        pieces = backend.stream(body)
        try:
            for item in pieces:
                if halt.is_set():
                    break
                put(item)
        except Exception as e:  # reported to the client as an error event
            put(e)
        finally:
            pieces.close()  # ends generation (the model's stream stops at the next token)
            put(_END)

    threading.Thread(target=run, daemon=True, name="serve-api-stream").start()


async def _next(queue: asyncio.Queue, http):
    """The next item, or None when the client has disconnected."""
    while True:
        try:
            return await asyncio.wait_for(queue.get(), POLL_S)
        except asyncio.TimeoutError:
            if await http.is_disconnected():
                return None


class _Guard:
    """ASGI middleware: the API key (constant-time check) and the request size limit."""

    def __init__(self, app, api_key: str | None, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes
        self.key_digest = hashlib.sha256(api_key.encode()).digest() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.key_digest and not self._authorised(headers.get(b"authorization", b"")):
            return await _reply(send, 401, error_body(
                "missing or incorrect API key (send Authorization: Bearer <key>)",
                code="invalid_api_key"))
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body_bytes:
            return await _reply(send, 413, self._too_big())
        body, more = b"", True
        while more:  # the body is read here, bounded, whatever Content-Length said
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                return await _reply(send, 413, self._too_big())
        return await self.app(scope, _replay(body, receive), send)

    def _authorised(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        digest = hashlib.sha256(token.strip()).digest()
        # both sides hashed to 32 bytes: the comparison time does not depend on the key
        return hmac.compare_digest(digest, self.key_digest) and scheme.lower() == b"bearer"

    def _too_big(self) -> dict:
        return error_body(f"the request body is larger than {self.max_body_bytes} bytes",
                          code="request_too_large")


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect notice, when it comes

    return replayed


async def _reply(send, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
