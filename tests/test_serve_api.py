"""serve-api against the official openai client, then courselab's openai: backend against it."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import free_port
from tiny_models import tiny_llama, train_tokenizer

from assistant.errors import ModelError
from assistant.models import get_model

QUESTIONS = ["What is attention?", "BERT masks tokens. Why?", "Name a model by OpenAI."]



@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real uvicorn server on a loopback port serving a tiny saved checkpoint."""
    import uvicorn

    from assistant.api.openai_server import create_app

    folder = tmp_path_factory.mktemp("ckpt")
    tokenizer = train_tokenizer()
    tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    name, port = f"hf:{folder}", free_port()
    server = uvicorn.Server(uvicorn.Config(create_app([name], folder), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield name, f"http://127.0.0.1:{port}/v1", folder
    server.should_exit = True
    thread.join(timeout=10)


def test_official_client_lists_and_chats(served):
    from openai import OpenAI

    name, url, _ = served
    client = OpenAI(base_url=url, api_key="unused")
    assert [m.id for m in client.models.list()] == [name]
    reply = client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": QUESTIONS[0]}], max_tokens=8,
        temperature=0)
    assert reply.choices[0].message.role == "assistant"
    assert 0 < reply.usage.completion_tokens <= 8
    stream = client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": QUESTIONS[0]}], max_tokens=8,
        temperature=0, stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces).strip() == reply.choices[0].message.content


def test_unknown_served_model_is_a_404(served):
    import openai

    _, url, _ = served
    with pytest.raises(openai.NotFoundError, match="not served"):
        openai.OpenAI(base_url=url, api_key="x").chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "hi"}])


def test_openai_backend_gives_the_local_greedy_answers(served):
    name, url, folder = served
    local = get_model(name, folder, {"max_new_tokens": 8})
    remote = get_model(f"openai:{name}@{url}", folder, {"max_new_tokens": 8})
    expected = [local.invoke(q).content for q in QUESTIONS]
    assert [remote.invoke(q).content for q in QUESTIONS] == expected
    assert [m.content for m in remote.batch(QUESTIONS)] == expected  # concurrent requests
    assert "".join(c.content for c in remote.stream(QUESTIONS[1])).strip() == expected[1]
    from openai import OpenAI

    official = OpenAI(base_url=url, api_key="unused").chat.completions.create(
        model=name, messages=[{"role": "user", "content": QUESTIONS[2]}], max_tokens=8,
        temperature=0)
    assert official.choices[0].message.content == expected[2]  # both routes, same greedy answer


def test_unreachable_server_is_a_model_error():
    model = get_model(f"openai:x@http://127.0.0.1:{free_port()}/v1", "/tmp")
    model.max_retries = 0
    with pytest.raises(ModelError, match="failed"):
        model.invoke("hi")


def test_a_server_answering_garbage_is_a_model_error():
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Garbage(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"<html>not json</html>")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.handle_request, daemon=True).start()
    model = get_model(f"openai:x@http://127.0.0.1:{server.server_port}/v1", "/tmp")
    model.max_retries = 0
    try:
        with pytest.raises(ModelError, match="failed"):
            model.invoke("hi")
    finally:
        server.server_close()


def test_concurrency_comes_from_settings(settings, monkeypatch):
    from assistant.chain.factory import build_assistant
    from assistant.config import Settings

    monkeypatch.setenv("COURSELAB_CONCURRENCY", "2")
    tuned = Settings(**{**settings.model_dump(), "concurrency": Settings().concurrency})
    assistant = build_assistant(tuned, "openai:x@http://127.0.0.1:9/v1")
    assert assistant.model.concurrency == 2
