"""End to end with the real offline models: MiniLM embeddings and SmolLM2-135M-Instruct.

Generated text is never compared word for word; its structure and grounding are.
The converted model and ONNX export are cached in .cache/ at the repository root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e
CACHE = ROOT / ".cache"
COURSE = ROOT / "corpus"


@pytest.fixture(scope="module")
def real_settings(tmp_path_factory):
    from assistant.config import Settings

    # fp32: a batch must equal one at a time (the default bf16 is not batch-invariant on CPUs)
    return Settings(corpus_dir=COURSE, index_dir=tmp_path_factory.mktemp("index"),
                    cache_dir=CACHE, precision="fp32")


@pytest.fixture(scope="module")
def assistant(real_settings):
    from assistant.chain.factory import build_assistant

    return build_assistant(real_settings, options={"max_new_tokens": 48})


@pytest.fixture(scope="module")
def course_sections():
    from assistant.corpus import load_corpus

    return {c.section for c in load_corpus(COURSE)}


def test_onnx_query_path_equals_sentence_transformers(real_settings):
    """The oracle for the fast path: same vectors as sentence-transformers itself."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from assistant.retrieval.embeddings import get_embedder, resolve_model

    texts = ["What is masked language modeling?", "hi", "A much longer sentence " * 20]
    fast = np.array(get_embedder("all-MiniLM-L6-v2", real_settings.cache_dir)
                    .embed_documents(texts))
    reference = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu").encode(
        texts, normalize_embeddings=True)
    assert np.abs(fast - reference).max() < 1e-5


@pytest.mark.parametrize("question, section", [
    ("What percentage of words does BERT mask during pre-training?", "Masked Language Modeling"),
    ("How many parameters does BERT-Large have?", "1. BERT"),
    ("Which paper introduced the attention mechanism?", "An Era Before Transformers"),
    ("What are the disadvantages of transformers?", "Disadvantages of Transformers"),
    ("What is a generative adversarial network?", "Popular GenAI Approaches"),
])
def test_retrieves_the_right_section(assistant, question, section):
    hits = assistant.retriever.search(question, 4)
    assert any(section in h.section for h in hits)


def test_answer_is_grounded_in_course_sections(assistant, course_sections):
    answer = assistant.answer("What is masked language modeling?")
    assert not answer.abstained and answer.answer.strip()
    assert answer.sources and {s.section for s in answer.sources} <= course_sections
    assert "<|im_start|>" in answer.prompt  # SmolLM2's own chat template
    assert answer.tokens["output"] > 0


def test_off_topic_question_abstains(assistant):
    assert assistant.answer("Who won the 2018 FIFA World Cup?").abstained


@pytest.mark.parametrize("question, off_topic", [
    ("Any tips to improve my attention span when studying for long exams?", True),  # psychology's
    ("What's the best way to fine-tune the intonation on an electric guitar?", True),
    ("how do I fine tune my guitar to drop D tuning", True),  # two such words in six
    ("How does attention let a model focus on parts of the input?", False),
    ("who published attention is all you need, and what did it get rid of", False),
])
def test_a_course_word_in_another_fields_question_is_off_topic(assistant, question, off_topic):
    from assistant.chain import retrieve

    prepared = retrieve(assistant.retriever, question)
    assert prepared.abstained == off_topic and (prepared.missing is None or not off_topic)


def test_streaming_gives_several_pieces(assistant):
    pieces = list(assistant.stream("What does GPT stand for?"))
    assert len([p for p in pieces if isinstance(p, str)]) > 2
    assert pieces[-1].timings["first_token_s"] < pieces[-1].timings["generate_s"]


def test_real_model_batch_equals_one_at_a_time(assistant):
    prompts = ["What is the capital of France?", "Name a colour.", "What is 2 + 2?"]
    model = assistant.model
    batched = [m.content for m in model.batch(prompts, max_new_tokens=12)]
    single = [model.invoke(p, max_new_tokens=12).content for p in prompts]
    assert batched == single and all(batched)


def test_cli_ask_json(tmp_path, course_sections):
    env = {**os.environ, "COURSELAB_CACHE": str(CACHE), "COURSELAB_INDEX": str(tmp_path / "i")}
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "What is masked language modeling?", "--json",
         "--max-new-tokens", "32"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"].strip() and not data["abstained"]
    assert data["model"] == "smollm2-135m-instruct"
    assert {s["section"] for s in data["sources"]} <= course_sections


def test_eval_run_on_the_real_model_then_served_by_the_cache(real_settings, tmp_path):
    from assistant.evaluation.report import summarize
    from assistant.evaluation.runner import Runner
    from assistant.evaluation.suite import make_suite

    suite = make_suite({"description": "e2e", "datasets": [ROOT / "evals/datasets/course_qa.jsonl"],
                        "templates": ["default"], "limit": 4,
                        "metrics": ["key_facts", "hit_at_k", "groundedness", "abstention"]})
    settings = real_settings.model_copy(update={"runs_dir": tmp_path})
    first = Runner(suite, settings, tmp_path / "a")
    rows = first.run()
    assert len(rows) == 4 and all(r["answer"] and not r["error"] for r in rows)
    assert sum(r["metrics"]["hit_at_k"]["score"] for r in rows) >= 3  # q004's passage is not in the top 4
    cell = summarize(rows, suite)["cells"][0]
    assert cell["metrics"]["groundedness"]["mean"] > 0.2  # answers reuse the course's words
    again = Runner(suite, settings, tmp_path / "b")
    assert [r["answer"] for r in again.run()] == [r["answer"] for r in rows]
    answered = sum(not r["abstained"] for r in rows)
    assert again.stats["generated"] == 0 and again.stats["cached"] == answered
