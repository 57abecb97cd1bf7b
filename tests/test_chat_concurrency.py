"""One browser session asking twice at once keeps both turns (the chat's state handling)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from assistant.service import Turn


def _service(both_started: threading.Barrier):
    def answer_stream(question, earlier, model, template, k):
        both_started.wait(10)  # the two answers are in flight together
        yield f"answer to {question}"
        yield Turn(question, question, template=template)

    return SimpleNamespace(wait=lambda s: True, error=None, answer_stream=answer_stream,
                           settings=SimpleNamespace(corpus_dir=None))


def _event(handlers, state, question, done):
    """What Gradio does for one event: the session's state in, the last state yielded kept."""
    for _, _, turns in handlers.respond(question, state["turns"], "m", "default", 4):
        if isinstance(turns, list):
            state["turns"] = turns
    done.append(question)


def test_two_questions_in_flight_from_one_session_both_keep_their_turn():
    from assistant.ui.chat import ChatHandlers

    earlier = {"question": "first?", "query": "first?", "answer": "a", "sources": []}
    state = {"turns": [earlier]}  # Gradio hands every event of a session the same object
    handlers = ChatHandlers(_service(threading.Barrier(2)))
    done: list = []
    threads = [threading.Thread(target=_event, args=(handlers, state, q, done))
               for q in ("second?", "third?")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(done) == ["second?", "third?"]
    assert [t["question"] for t in state["turns"]][0] == "first?"
    assert sorted(t["question"] for t in state["turns"][1:]) == ["second?", "third?"]
