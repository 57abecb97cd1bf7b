"""The Course lab tab driven through the app's API (tiny models, fake chat model and embedder)."""

from __future__ import annotations

import shutil

import pytest
from conftest import DATA, free_port
from test_explain import tiny_lab  # noqa: F401 (the tiny models, in this module too)

from assistant.explain import loaded


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    from assistant.config import Settings
    from assistant.service import Service
    from assistant.ui import launch

    root = tmp_path_factory.mktemp("lab-app")
    shutil.copytree(DATA / "corpus", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=root / "cache",
                        feedback_path=root / "feedback.jsonl", embedder="fake-hash", model="fake")
    demo = launch(Service(settings), port=(port := free_port()))
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


HOSTILE = "<script>alert(1)</script> $x$"


@pytest.mark.parametrize(("api", "args", "shown"), [
    ("/lab_tokens", (HOSTILE,), "&lt;"),
    ("/lab_next_token", (HOSTILE, loaded.CAUSAL, 0.0, 0, 1.0), "after sampling settings"),
    ("/lab_attention", (HOSTILE, loaded.ENCODER, 0, 0, ""), "attends to"),
    ("/lab_fill_mask", ("How are [MASK] <b>doing</b>?", "you, they", loaded.CAUSAL), "whole sentence"),
    ("/lab_architecture", ("flan-t5-base-random",), "247,577,856"),
    ("/lab_embeddings", (HOSTILE,), "nearest section"),
])
def test_each_demo_answers_with_a_figure_and_an_inert_table(client, api, args, shown):
    image, html = client.predict(*args, api_name=api)[:2]
    assert image and image.endswith((".webp", ".png"))
    assert shown in html and "Course section:" in html
    assert "<script" not in html and "<b>" not in html


def test_the_finetune_demo_runs_on_the_shipped_set(client):
    image, html = client.predict(8, api_name="/lab_finetune")
    assert image and "frozen MiniLM" in html and "bag of words" in html


@pytest.mark.parametrize(("api", "args", "error"), [
    ("/lab_fill_mask", ("no blank", "", loaded.CAUSAL), "exactly one"),
    ("/lab_attention", ("the cat", loaded.ENCODER, 9, 0, ""), "layer must be"),
    ("/lab_next_token", ("  ", loaded.CAUSAL, 1.0, 0, 1.0), "give some text"),
    ("/lab_tokens", ("",), "give some text"),
])
def test_bad_input_is_a_visible_message(client, api, args, error):
    out = client.predict(*args, api_name=api)
    assert out[0] is None and "⚠️" in out[1] and error in out[1]


def test_the_tab_opens_prefilled_from_a_link():
    import gradio as gr

    from assistant.ui.course_lab import CourseLab

    with gr.Blocks():
        lab = CourseLab(gr.Tabs(), {"tokens": gr.Textbox(), "fill-mask": gr.Textbox()})
    updates = lab.prefill("fill-mask", "How does attention work?")
    assert updates[0].selected == "fill-mask"
    assert updates[1] == gr.skip() and updates[2] == "How does attention [MASK]?"
    assert lab.prefill("nope", "x")[0] == gr.skip()


def test_corpus_sections_with_a_missing_figure_link_to_their_demos():
    from assistant.config import PROJECT_ROOT
    from assistant.ui.course_lab import demo_links

    links = demo_links("A little bit about Transformers", PROJECT_ROOT / "corpus", "it <b>x</b>")
    assert 'href="?lab=attention&amp;text=it+%3Cb%3Ex%3C%2Fb%3E"' in links and "<b>" not in links
    assert demo_links("Applications of GenAI", PROJECT_ROOT / "corpus") == ""
    sources = ["A little bit about Transformers", "Popular Modern LLMs > 3. T5 (Text to Text "
               "Transfer Transformer)", "A little bit about Transformers"]
    both = demo_links(sources, PROJECT_ROOT / "corpus", "What is T5?")
    assert both.count("?lab=attention") == 1 and "?lab=architecture&amp;text=What+is+T5" in both
