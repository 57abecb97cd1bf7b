"""The Gradio app driven through its API with gradio_client (fake model and embedder)."""

from __future__ import annotations

import shutil
import threading

import pytest
from conftest import DATA, free_port

from assistant.ui import parse_auth
from assistant.ui.chat import render_turn
from assistant.ui.html import escape


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from assistant.config import Settings
    from assistant.service import Service
    from assistant.ui import launch

    root = tmp_path_factory.mktemp("app")
    shutil.copytree(DATA / "corpus", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=root / "cache",
                        feedback_path=root / "feedback.jsonl", embedder="fake-hash", model="fake")
    service = Service(settings)
    port = free_port()
    demo = launch(service, port=port)
    assert service.wait(60), service.error
    yield f"http://127.0.0.1:{port}/", service
    demo.close()


@pytest.fixture
def client(app):
    from gradio_client import Client

    return Client(app[0], verbose=False)


def test_a_question_gets_an_answer_and_its_sources(client):
    turn = client.predict("What is self-attention?", api_name="/ask")
    assert not turn["abstained"] and turn["answer"]
    assert turn["sources"] and turn["sources"][0]["section"] == "Attention"
    assert "attends" in turn["answer"]  # the fake model quotes the context it was given
    assert turn["device"] == "cpu" and turn["model"] == "fake" and turn["tokens"]["input"] > 0


def test_an_empty_question_gets_a_clear_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="the question is empty"):
        client.predict("   ", api_name="/ask")


def test_a_follow_up_is_searched_as_a_standalone_question(client):
    turn = client.predict("and what does it compute?", ["What is self-attention?"], api_name="/ask")
    assert turn["query"] == "What does self-attention compute?"
    assert turn["sources"][0]["section"] == "Attention"


def test_an_uncovered_question_offers_the_closest_sections(client):
    turn = client.predict("Who won the FIFA World Cup in 2018?", api_name="/ask")
    assert turn["abstained"] and "does not cover" in turn["answer"]
    assert turn["sources"]  # the closest sections, not an invented answer


def test_unknown_model_and_template_are_refused_with_the_choices(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="model 'nope' is not offered by this app; choose one of: fake"):
        client.predict("What is self-attention?", [], "nope", api_name="/ask")
    with pytest.raises(AppError, match="unknown template 'nope'; choose one of: .*default"):
        client.predict("What is self-attention?", [], "", "nope", api_name="/ask")


def test_four_simultaneous_clients_get_their_own_answers(app):
    from gradio_client import Client

    questions = ["What is self-attention?", "What does the encoder do?",
                 "What is BERT?", "What is positional encoding?"]
    alone = {q: Client(app[0], verbose=False).predict(q, api_name="/ask") for q in questions}
    results: dict[str, dict] = {}
    barrier = threading.Barrier(len(questions))

    def ask(q):
        client = Client(app[0], verbose=False)
        barrier.wait()
        results[q] = client.predict(q, api_name="/ask")

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) == set(questions)
    for q in questions:
        assert results[q]["question"] == q
        assert results[q]["answer"] == alone[q]["answer"]
        assert [s["chunk_id"] for s in results[q]["sources"]] == \
               [s["chunk_id"] for s in alone[q]["sources"]]
    assert len({r["answer"] for r in results.values()}) > 1


def test_search_endpoint_lists_hits_with_scores(client):
    table = client.predict("positional encoding", 3, api_name="/search")
    rows = table["data"]
    assert 1 <= len(rows) <= 3 and rows[0][0] == 1
    relevance = [float(r[1]) for r in rows]  # the score that ranks, shown beside the similarity
    assert relevance == sorted(relevance, reverse=True)
    assert all(-1.0 <= float(r[2]) <= 1.0 for r in rows)


def test_uploads_index_incrementally_and_refuse_bad_files(app):
    service = app[1]
    before = service.retriever().index.count()
    message = service.add_files([("moe.md", b"## Mixture of experts\n\nA router picks two experts "
                                  b"for each token in a sparse MoE layer.\n")])
    assert message.startswith("added moe.md: added 1, kept")
    assert service.retriever().index.count() == before + 1
    assert service.retriever().search("mixture of experts router", 1)[0].source == "moe.md"
    from assistant.errors import InputError

    with pytest.raises(InputError, match="unsafe file name"):
        service.add_files([("../x.md", b"# X\n\ntext")])
    assert service.retriever().index.count() == before + 1


def test_votes_append_feedback_rows(app):
    from assistant.datasets import read_rows

    service = app[1]
    turn = service.answer("What is self-attention?", [])
    service.vote(turn.id, "down")
    rows = read_rows(service.settings.feedback_path)
    assert rows[-1].metadata["vote"] == "down" and rows[-1].user_input == "What is self-attention?"


def test_a_vote_names_the_servers_answer_and_a_forged_one_is_refused(app):
    from assistant.errors import InputError

    service = app[1]
    path = service.settings.feedback_path
    before = path.read_text() if path.exists() else ""
    with pytest.raises(InputError):
        service.vote("not-an-answer-this-server-gave", "up")
    assert (path.read_text() if path.exists() else "") == before


def test_auth_is_required_when_set(tmp_path, settings):
    import httpx

    from assistant.service import Service
    from assistant.ui import launch

    port = free_port()
    demo = launch(Service(settings), port=port, auth=("ada", "s3cret"))
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/config").status_code == 401
        ok = httpx.post(f"{url}/login", data={"username": "ada", "password": "s3cret"})
        assert ok.status_code == 200
        bad = httpx.post(f"{url}/login", data={"username": "ada", "password": "wrong"})
        assert bad.status_code == 400
    finally:
        demo.close()


@pytest.mark.parametrize("value, expected", [
    (None, None), ("ada:s3cret", ("ada", "s3cret")), ("ada:pa:ss", ("ada", "pa:ss")),
])
def test_parse_auth(value, expected):
    assert parse_auth(value) == expected


@pytest.mark.parametrize("value", ["ada", ":pw", "ada:"])
def test_parse_auth_refuses_malformed(value):
    from assistant.errors import InputError

    with pytest.raises(InputError, match="USER:PASSWORD"):
        parse_auth(value)


def test_questions_answers_and_chunks_render_inert():
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    turn = {"question": evil, "query": evil, "answer": evil, "abstained": False, "model": "m",
            "device": "cpu", "timings": {"total_s": 1.0}, "tokens": {"input": 1, "output": 1},
            "sources": [{"section": evil, "text": evil, "score": 0.5}]}
    html = render_turn(turn)
    assert "<script" not in html and "<img" not in html
    assert escape(evil) in html


def test_lab_service_compares_and_saves_templates_safely(tmp_path, settings):
    import shutil as sh

    from conftest import ROOT

    from assistant.errors import TemplateError
    from assistant.service import Service

    sh.copytree(ROOT / "prompts", tmp_path / "prompts")
    service = Service(settings.model_copy(update={"prompts_dir": tmp_path / "prompts"}))
    service.load()
    result = service.compare("What is self-attention?", ["default", "citing"], ["fake"], 4)
    assert [(c.template, c.model) for c in result.cells] == [("default", "fake"), ("citing", "fake")]
    text = service.template_text("zero-shot").replace("name: zero-shot", "name: mine")
    assert service.check_template(text).name == "mine"
    assert service.save_template(text).name == "mine.yaml" and "mine" in service.templates()
    with pytest.raises(TemplateError, match="already exists"):
        service.save_template(text.replace("The plainest", "Changed"))
    assert "The plainest" in service.template_text("mine")
    service.save_template(text.replace("The plainest", "Changed"), overwrite=True)
    assert "Changed" in service.template_text("mine")
    with pytest.raises(TemplateError, match="not a plain name"):
        service.save_template(text.replace("{question}", "{question.__globals__}"))
    assert not list((tmp_path / "prompts").glob(".*.part"))


def make_run(settings, folder):
    """A small finished run folder, made with the fake model."""
    from assistant.evaluation.report import plot, summarize, write_html, write_summary
    from assistant.evaluation.runner import Runner
    from assistant.evaluation.suite import make_suite

    suite = make_suite({"description": "tiny", "datasets": [DATA / "tiny_qa.jsonl"],
                        "templates": ["default", "zero-shot"], "models": ["fake"],
                        "metrics": ["key_facts", "abstention", "groundedness"]})
    rows = Runner(suite, settings, folder).run()
    summary = summarize(rows, suite)
    write_summary(summary, folder / "summary.json")
    write_html(summary, rows, plot(summary, folder / "plots"), folder / "report.html")
    return rows


def test_evals_tab_helpers_read_a_run_folder(settings, tmp_path):
    import json as js

    from assistant.ui.evals import attribution_rows, drill_down, list_runs, summary_rows

    rows = make_run(settings, tmp_path / "runs" / "r1")
    (tmp_path / "runs" / "not-a-run").mkdir()
    assert list_runs(tmp_path / "runs") == ["r1"]
    summary = js.loads((tmp_path / "runs" / "r1" / "summary.json").read_text())
    headers, table = summary_rows(summary)
    assert headers == ["metric", "default · fake · k=4 hybrid", "zero-shot · fake · k=4 hybrid"]
    assert [r[0] for r in table] == ["items", "errors", "key_facts", "abstention", "groundedness"]
    assert table[0][1] == 8
    assert attribution_rows(summary)[0][:2] == ["default · fake · k=4 hybrid", "key_facts"]
    rows[0]["answer"] = "<script>alert(1)</script>"
    text = drill_down(rows, rows[0]["item_id"])
    assert "<script>" not in text and "&lt;script&gt;" in text and "Retrieved:" in text
