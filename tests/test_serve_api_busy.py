"""serve-api when the local model is busy, and the finish reason a local model reports."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from test_serve_api import _ask, _client, _events, _is_openai_error, _pool
from tiny_models import loader_for, tiny_llama, train_tokenizer


def _busy_model():
    from assistant.models.fake import FakeChatModel
    from assistant.models.scheduler import ModelBusyError

    class BusyFake(FakeChatModel):
        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            raise ModelBusyError("tiny is busy: 256 requests are waiting; try again in a moment")
            yield  # a generator, as the real model's stream is

    return BusyFake()


def test_a_streamed_request_to_a_busy_model_is_a_503_before_the_stream(settings):
    client = _client(_pool(settings, lambda s, n: _busy_model()))
    response = _ask(client, stream=True)
    error = _is_openai_error(response, 503)  # an HTTP error, not an event inside a 200 stream
    assert error["code"] == "model_busy" and "try again" in error["message"]
    assert "text/event-stream" not in response.headers.get("content-type", "")


def test_a_stream_that_starts_is_unchanged(settings):
    from assistant.models.fake import FakeChatModel

    model = FakeChatModel()
    model.enqueue("one two three")
    events = _events(_ask(_client(_pool(settings, lambda s, n: model)), stream=True, max_tokens=50))
    assert events[0]["choices"][0]["delta"]["role"] == "assistant" and events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]).split() == \
        ["one", "two", "three"]
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.fixture(scope="module")
def tiny():
    from assistant.models.hf import HFChatModel

    tokenizer = train_tokenizer()
    return HFChatModel(model_name="tiny", kind="causal", device="cpu", precision="fp32",
                       options={"max_new_tokens": 8},
                       loader=loader_for(tiny_llama(tokenizer), tokenizer))


def test_an_answer_that_ends_on_its_last_allowed_token_finished_with_stop(tiny, settings):
    """An end token on the last allowed step is a natural end: 'stop', not 'length'."""
    from assistant.models.options import parse_options

    prompt = tiny.render([HumanMessage("What is attention?")])
    job = tiny._job(prompt, parse_options({"max_new_tokens": 8}))
    tiny.scheduler().complete([job])
    tokens = list(job._tokens)
    assert len(tokens) == 8 and job.finish == "length"
    engine = tiny.load().engine
    if tokens[-1] in tokens[:-1]:
        pytest.fail("the tiny model repeats its last token; pick another prompt")
    saved = engine._eos
    engine._eos = {tokens[-1]}  # the 8th token now ends the answer
    try:
        client = _client(_pool(settings, lambda s, n: tiny, names=("tiny",)))
        body = {"model": "tiny", "messages": [{"role": "user", "content": "What is attention?"}],
                "max_tokens": 8}
        reply = client.post("/v1/chat/completions", json=body).json()
        assert reply["usage"]["completion_tokens"] == 8
        assert reply["choices"][0]["finish_reason"] == "stop"
        events = _events(client.post("/v1/chat/completions", json={**body, "stream": True}))
        assert events[-2]["choices"][0]["finish_reason"] == "stop"
        assert events[-2]["usage"]["completion_tokens"] == 8
        engine._eos = saved
        reply = client.post("/v1/chat/completions", json=body).json()
        assert reply["choices"][0]["finish_reason"] == "length"  # cut: still 'length'
    finally:
        engine._eos = saved
