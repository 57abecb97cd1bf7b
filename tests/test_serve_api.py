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

    from assistant.api.backends import ModelPool
    from assistant.api.openai_server import create_app
    from assistant.config import Settings

    folder = tmp_path_factory.mktemp("ckpt")
    tokenizer = train_tokenizer()
    tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    name, port = f"hf:{folder}", free_port()
    # fp32: the precision in which a batched answer is exactly the answer alone (precision.py)
    pool = ModelPool([name], Settings(cache_dir=folder, prompts_dir=folder, precision="fp32"))
    server = uvicorn.Server(uvicorn.Config(create_app(pool), host="127.0.0.1",
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
    local = get_model(name, folder, {"max_new_tokens": 8}, precision="fp32")
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


# --- hardening (issue 12 item 3) and the course assistant as a model (issue 15), with fakes ---
def _pool(settings, build_model=None, build_assistant=None, names=("fake",)):
    from assistant.api.backends import ModelPool

    return ModelPool(list(names), settings, build_model, build_assistant)


def _client(pool, **kwargs):
    from fastapi.testclient import TestClient

    from assistant.api.openai_server import create_app

    return TestClient(create_app(pool, **kwargs), raise_server_exceptions=False)


def _ask(client, content="What is attention?", model="fake", **fields):
    return client.post("/v1/chat/completions",
                       json={"model": model, "messages": [{"role": "user", "content": content}],
                             **fields}, headers=fields.pop("headers", None))


def _is_openai_error(response, status: int) -> dict:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_a_prompt_past_the_window_is_a_400_before_generation(settings):
    from assistant.models.fake import FakeChatModel

    model = FakeChatModel(context_window=50)
    client = _client(_pool(settings, lambda s, n: model))
    error = _is_openai_error(_ask(client, "word " * 60, max_tokens=1), 400)
    assert error["code"] == "context_length_exceeded" and "50" in error["message"]
    error = _is_openai_error(_ask(client, "word " * 30, max_tokens=40), 400)  # 30 + 40 > 50
    assert model.history == []  # refused before the model saw anything
    assert _ask(client, "word " * 30, max_tokens=10).status_code == 200


BAD_BODIES = [
    ({"seed": 2**64}, "seed"),
    ({"seed": -1}, "seed"),
    ({"stop": [""]}, "stop"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": "x" * 65}, "stop"),
    ({"n": 2}, "n"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"temperature": 9}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}] * 257}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "tool", "content": "hi"}]}, "role"),
    ({"model": ""}, "model"),
    # types are strict, as OpenAI's: no string numbers, no booleans as integers
    ({"max_tokens": "5"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"temperature": "0.5"}, "temperature"),
    ({"stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(("fields", "named"), BAD_BODIES)
def test_out_of_bounds_requests_are_400_in_openai_shape(settings, fields, named):
    client = _client(_pool(settings))
    body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], **fields}
    error = _is_openai_error(client.post("/v1/chat/completions", json=body), 400)
    assert named in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"", b'{"model": "fake"}'])
def test_malformed_bodies_get_the_openai_error_shape(settings, raw):
    client = _client(_pool(settings))
    response = client.post("/v1/chat/completions", content=raw,
                           headers={"content-type": "application/json"})
    _is_openai_error(response, 400)
    assert "detail" not in response.json()


def test_a_broken_template_on_the_server_is_named_without_the_server_folders(settings, tmp_path):
    import shutil

    prompts = tmp_path / "private" / "prompts"
    shutil.copytree(settings.prompts_dir, prompts)
    (prompts / "broken.yaml").write_text("name: [unclosed\n")
    client = _client(_pool(settings.model_copy(update={"prompts_dir": prompts})))
    response = _ask(client, model="courselab/broken")
    assert response.status_code >= 400 and "broken.yaml" in response.json()["error"]["message"]
    assert str(tmp_path) not in response.text and "private" not in response.text


def test_unknown_routes_and_methods_get_the_openai_error_shape(settings):
    client = _client(_pool(settings))
    _is_openai_error(client.get("/v1/nothing"), 404)
    _is_openai_error(client.get("/v1/chat/completions"), 405)


def test_request_size_is_limited(settings):
    client = _client(_pool(settings), max_body_bytes=2000)
    error = _is_openai_error(_ask(client, "x" * 3000), 413)
    assert error["code"] == "request_too_large"
    assert _ask(client, "What is BERT?").status_code == 200


def test_api_key_is_required_when_set(settings):
    client = _client(_pool(settings), api_key="s3cret-key")
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"},
                    {"Authorization": "Basic s3cret-key"}):
        error = _is_openai_error(_ask(client, headers=headers), 401)
        assert error["code"] == "invalid_api_key"
    _is_openai_error(client.get("/v1/models"), 401)
    assert _ask(client, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200


def test_the_key_is_compared_in_constant_time(monkeypatch, settings):
    import hmac

    from assistant.api import openai_server

    calls, original = [], hmac.compare_digest
    monkeypatch.setattr(openai_server.hmac, "compare_digest",
                        lambda a, b: calls.append((len(a), len(b))) or original(a, b))
    client = _client(_pool(settings), api_key="k" * 40)
    _ask(client, headers={"Authorization": "Bearer short"})
    assert calls == [(32, 32)]  # digests of equal length, whatever the key sent


def test_finish_reason_is_length_when_cut(settings):
    from assistant.models.fake import FakeChatModel

    model = FakeChatModel()
    client = _client(_pool(settings, lambda s, n: model))
    model.enqueue("one two three four five six", "one two")
    assert _ask(client, max_tokens=6).json()["choices"][0]["finish_reason"] == "length"
    assert _ask(client, max_tokens=6).json()["choices"][0]["finish_reason"] == "stop"
    model.enqueue("one two three four five six")
    events = _events(client.post("/v1/chat/completions", json={
        "model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6,
        "stream": True}))
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]).split() == \
        "one two three four five six".split()


def _events(response) -> list:
    assert response.status_code == 200
    out = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            out.append(data if data == "[DONE]" else __import__("json").loads(data))
    return out


def test_concurrent_first_requests_load_each_model_once(settings):
    from concurrent.futures import ThreadPoolExecutor

    from assistant.models.fake import FakeChatModel

    built = []

    def slow_build(settings, name):
        built.append(name)
        time.sleep(0.3)  # a load long enough for every request to arrive meanwhile
        return FakeChatModel()

    client = _client(_pool(settings, slow_build, names=("fake", "other")))
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: _ask(client, model=["fake", "other"][i % 2]), range(8)))
    assert [r.status_code for r in replies] == [200] * 8
    assert sorted(built) == ["fake", "other"]


def test_the_course_assistant_is_a_model(settings):
    pool = _pool(settings)
    client = _client(pool)
    names = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert "fake" in names and "courselab/default" in names and "courselab/citing" in names
    body = _ask(client, "What is self-attention?", model="courselab/default").json()
    card = body["courselab"]
    assert body["choices"][0]["message"]["content"] == card.get("lead") or card["answer"]
    assert card["sources"] and not card["abstained"]
    off = _ask(client, "Who won the 2018 FIFA World Cup?", model="courselab/default").json()
    assert off["courselab"]["abstained"] and "does not cover" in off["choices"][0]["message"]["content"]
    events = _events(client.post("/v1/chat/completions", json={
        "model": "courselab/default", "stream": True,
        "messages": [{"role": "user", "content": "What is self-attention?"}]}))
    assert events[-2]["courselab"]["sources"] and events[-2]["choices"][0]["finish_reason"]
    assert _ask(client, model="courselab/default", k=2).json()["courselab"]["sources"]
    assert ("assistant", "default", 2, "hybrid") in pool.loads
    assert pool.loads.count(("model", "fake")) == 1  # the assistant shares the served model


def test_the_reply_is_the_lead_when_the_answer_has_one(settings):
    from types import SimpleNamespace

    answer = SimpleNamespace(answer="Long answer with the quote.", lead="Short lead.",
                             abstained=False, tokens={"input": 5, "output": 3},
                             to_dict=lambda: {"answer": "Long answer with the quote.",
                                              "lead": "Short lead.", "quote": "q", "support": 1})
    assistant = SimpleNamespace(answer=lambda q: answer, model=SimpleNamespace(options=None),
                                template=SimpleNamespace(generation={"max_new_tokens": 64}))
    client = _client(_pool(settings, build_assistant=lambda s, m, t: assistant))
    body = _ask(client, model="courselab/default").json()
    assert body["choices"][0]["message"]["content"] == "Short lead."
    assert body["courselab"]["quote"] == "q"


@pytest.mark.parametrize("name", ["courselab/../default", "courselab/nope", "courselab/",
                                  "courselab/default.yaml", "hf:gpt2", "openai:x@http://h/v1"])
def test_only_served_names_are_models(settings, name):
    client = _client(_pool(settings))
    error = _is_openai_error(_ask(client, model=name), 404)
    assert error["code"] == "model_not_found"


def test_retrieval_fields_are_for_assistant_models_only(settings):
    client = _client(_pool(settings))
    _is_openai_error(_ask(client, k=2), 400)
    _is_openai_error(_ask(client, model="courselab/default", k=99), 400)
    _is_openai_error(_ask(client, model="courselab/default", retrieval_mode="sparse"), 400)



def _slow_model():
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    from assistant.models.fake import FakeChatModel

    class SlowFake(FakeChatModel):
        produced: int = 0
        closed: bool = False

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            try:
                for _ in range(500):  # 10 s if nobody stops it
                    time.sleep(0.02)
                    self.produced += 1
                    yield ChatGenerationChunk(message=AIMessageChunk(content="word "))
            finally:
                self.closed = True

    return SlowFake()


def test_a_client_that_disconnects_stops_generation(settings):
    import http.client

    import uvicorn

    from assistant.api.openai_server import create_app

    model = _slow_model()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(_pool(settings, lambda s, n: model)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body=__import__("json").dumps({
            "model": "fake", "stream": True, "max_tokens": 4000,
            "messages": [{"role": "user", "content": "go"}]}),
            headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        response.read1(200)  # a first chunk or two, then the client goes away
        conn.sock.close()
        conn.close()
        deadline = time.time() + 5
        while not model.closed and time.time() < deadline:
            time.sleep(0.05)
        assert model.closed, "generation still running after the client left"
        assert model.produced < 250
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_closing_a_local_models_stream_ends_generation():
    from assistant.models.hf import HFChatModel
    from assistant.models.options import GenerationOptions

    tokenizer = train_tokenizer()
    model = HFChatModel(model_name="tiny", kind="causal",
                        loader=lambda device, dtype: (tiny_llama(tokenizer), tokenizer))
    opts = GenerationOptions(max_new_tokens=4000, min_new_tokens=4000)
    pieces = model.stream_text("What is attention?", opts)
    next(pieces)
    started = time.perf_counter()
    pieces.close()
    assert model._lock.acquire(timeout=5), "the generate thread kept the model's lock"
    model._lock.release()
    assert time.perf_counter() - started < 5


def test_any_request_body_gets_an_answer_or_an_openai_error(settings):
    """Property: whatever the body, a 200 or a 4xx in OpenAI's shape, never a 500, in bounded time."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    client = _client(_pool(settings), max_body_bytes=20_000)
    scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=40)
    json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                               | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
    message = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool", ""]),
                                     "content": st.text(max_size=200) | json_values})
    bodies = st.fixed_dictionaries(
        {"model": st.sampled_from(["fake", "courselab/default", "nope", ""]) | st.text(max_size=20),
         "messages": st.lists(message, max_size=4) | json_values},
        optional={"max_tokens": scalars, "seed": scalars, "stop": json_values,
                  "temperature": scalars, "k": scalars, "retrieval_mode": scalars,
                  "stream": st.booleans()})

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies | json_values)
    def check(body):
        started = time.perf_counter()
        raw = __import__("json").dumps(body)  # NaN/Infinity included: not JSON, must be a 400
        response = client.post("/v1/chat/completions", content=raw,
                               headers={"content-type": "application/json"})
        assert time.perf_counter() - started < 10
        assert response.status_code in (200, 400, 404, 413), response.text
        if response.status_code != 200:
            _is_openai_error(response, response.status_code)

    check()


@pytest.mark.parametrize(("host", "key", "warning"), [
    ("127.0.0.1", None, None), ("::1", None, None), ("localhost", None, None),
    ("0.0.0.0", None, "NO API KEY"), ("0.0.0.0", "k", "API key required"),
    ("192.168.1.5", None, "NO API KEY")])
def test_serve_api_warns_beyond_loopback_and_takes_the_key_from_the_environment(
        fake_env, monkeypatch, host, key, warning):
    import uvicorn
    from click.testing import CliRunner

    from assistant.cli import cli

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    if key:
        monkeypatch.setenv("COURSELAB_API_KEY", key)
    result = CliRunner().invoke(cli, ["serve-api", "--host", host, "--model", "fake"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == host
    if warning:
        assert "warning" in result.output and warning in result.output
    else:
        assert "warning" not in result.output
    from fastapi.testclient import TestClient

    status = TestClient(seen["app"]).get("/v1/models").status_code
    assert status == (401 if key else 200)


def test_a_key_on_the_command_line_is_warned_about(fake_env, monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from assistant.cli import cli

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    result = CliRunner().invoke(cli, ["serve-api", "--model", "fake", "--api-key", "k"])
    assert result.exit_code == 0 and "COURSELAB_API_KEY" in result.output


def test_a_full_model_queue_is_a_503_the_client_may_retry():
    from assistant.api.openai_server import _status
    from assistant.models.scheduler import ModelBusyError

    assert _status(ModelBusyError("smollm2 is busy; try again")) == (503, "model_busy")


@pytest.mark.parametrize("error, status", [("generation failed: boom", 500),
                                           ("smollm2 is busy: 9 requests are waiting", 503)])
def test_an_answer_that_failed_is_an_error_not_an_empty_reply(settings, error, status):
    from types import SimpleNamespace

    answer = SimpleNamespace(answer="", lead="", abstained=False, error=error,
                             tokens={"input": 0, "output": 0}, to_dict=lambda: {"error": error})
    assistant = SimpleNamespace(answer=lambda q: answer, model=SimpleNamespace(options=None),
                                template=SimpleNamespace(generation={}))
    client = _client(_pool(settings, build_assistant=lambda s, m, t: assistant))
    body = _is_openai_error(_ask(client, model="courselab/default"), status)
    assert error in body["message"]


def test_served_models_load_in_the_settings_precision(settings, monkeypatch):
    import assistant.models as models
    from assistant.api.backends import _registry_model

    seen = []
    monkeypatch.setattr(models, "get_model", lambda *a, **kw: seen.append(kw))
    _registry_model(settings.model_copy(update={"precision": "fp32"}), "fake")
    _registry_model(settings.model_copy(update={"precision": "auto"}), "fake")
    assert seen[0]["precision"] == "fp32" and "precision" not in seen[1]


@pytest.mark.parametrize("value, sent", [(1e-300, 0.0), (0.005, 0.0), (0.0, 0.0), (0.7, 0.7)])
def test_a_tiny_temperature_is_greedy(value, sent):
    from assistant.api.schema import ChatRequest

    request = ChatRequest(model="fake", messages=[{"role": "user", "content": "hi"}],
                          temperature=value)
    assert request.options()["temperature"] == sent


def test_a_tiny_temperature_is_answered(settings):
    client = _client(_pool(settings))
    assert _ask(client, temperature=1e-300).status_code == 200


def test_serve_api_refuses_the_extractive_baseline_at_startup(fake_env, monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from assistant.cli import cli

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(app))
    result = CliRunner().invoke(cli, ["serve-api", "--model", "extractive"])
    assert result.exit_code == 2 and not started
    assert "'extractive' only quotes the course" in result.output
    assert len(result.output.strip().splitlines()) == 1
