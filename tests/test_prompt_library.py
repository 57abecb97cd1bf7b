"""The shipped template library: every file validates and renders for a causal and a
seq2seq model; the new schema fields refuse bad values; similarity selection is exact."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT
from tiny_models import loader_for, tiny_llama, tiny_t5, train_tokenizer

from assistant.errors import TemplateError
from assistant.prompts import load_template

SHIPPED = sorted((ROOT / "prompts").glob("*.yaml"))
CONTEXT = "Self-attention lets every token attend to every other token."
GOOD = "name: t\nkind: few-shot\ndescription: d\ntemplate: 'Q: {question} C: {context}'\n" \
       "variables: [question, context]\n"


def test_at_least_six_templates_of_every_kind_ship():
    kinds = {load_template(p).kind for p in SHIPPED}
    assert len(SHIPPED) >= 6
    assert kinds == {"zero-shot", "few-shot", "instruction", "chain-of-thought", "citing"}
    similar = [load_template(p) for p in SHIPPED if load_template(p).selector.by == "similarity"]
    assert similar and similar[0].pool_examples()


@pytest.fixture(scope="module")
def models():
    from assistant.models.hf import HFChatModel

    tok = train_tokenizer()
    plain = train_tokenizer(chat_template=None)
    return [HFChatModel(model_name="tiny-llama", kind="causal", loader=loader_for(tiny_llama(tok), tok)),
            HFChatModel(model_name="tiny-t5", kind="seq2seq", loader=loader_for(tiny_t5(plain), plain))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_template_renders_for_causal_and_seq2seq(path, models):
    from assistant.models.hf import plain_prompt
    from assistant.retrieval.embeddings import HashEmbedder

    template = load_template(path)
    messages = template.chat_prompt(HashEmbedder()).invoke(
        {"context": CONTEXT, "question": "What does self-attention do?"}).to_messages()
    for model in models:
        text = model.render(messages)
        assert CONTEXT in text and "What does self-attention do?" in text
        assert model.count_tokens(text) > 0
    assert models[0].render(messages) != plain_prompt(messages)  # the chat template
    assert models[1].render(messages) == plain_prompt(messages)  # plain text for T5


def write(tmp_path: Path, text: str, pool: str | None = None) -> Path:
    if pool is not None:
        (tmp_path / "pool.jsonl").write_text(pool)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


POOL_LINE = json.dumps({"question": "q", "context": "c", "answer": "a"}) + "\n"
BAD = [
    (GOOD, None, "few-shot template needs examples or a selector pool"),
    (GOOD.replace("few-shot", "zero-shot") + "selector: {by: similarity}\n", None,
     "similarity selection needs a pool"),
    (GOOD + "selector: {by: similarity, pool: ../../etc/x.jsonl}\n", None, "selector.pool"),
    (GOOD + "selector: {by: similarity, pool: missing.jsonl}\n", None, "missing.jsonl: cannot read"),
    (GOOD + "selector: {by: similarity, pool: pool.jsonl}\n", "{not json\n", "pool.jsonl:1: invalid JSON"),
    (GOOD + "selector: {by: similarity, pool: pool.jsonl}\n", POOL_LINE + '{"question": "q"}\n',
     "pool.jsonl:2: an example needs the text keys question, context, answer"),
    (GOOD + "selector: {by: nearest, pool: pool.jsonl}\n", POOL_LINE, "selector.by"),
    (GOOD + "selector: {by: similarity, pool: pool.jsonl, k: 0}\n", POOL_LINE, "selector.k"),
    (GOOD.replace("few-shot", "chain-of-thought"), None, "needs its answer line"),
    (GOOD.replace("few-shot", "zero-shot") + "answer_pattern: '('\n", None, "not a regular expression"),
    (GOOD.replace("few-shot", "zero-shot") + "answer_pattern: 'Answer:'\n", None, "needs a group"),
    (GOOD.replace("few-shot", "zero-shot") + "generation: {temperatur: 1}\n", None, "generation"),
    (GOOD.replace("few-shot", "zero-shot") + "folder: /etc\n", None, "folder: Extra inputs"),
]


@pytest.mark.parametrize("text, pool, error", BAD)
def test_bad_schema_values_name_the_file_and_field(tmp_path, text, pool, error):
    path = write(tmp_path, text, pool)
    with pytest.raises(TemplateError, match=re.escape(error)) as info:
        load_template(path)
    assert str(path) in str(info.value)


def test_similarity_selects_the_nearest_pool_examples(tmp_path):
    from assistant.retrieval.embeddings import HashEmbedder

    pool = [{"question": q, "context": f"notes on {q}", "answer": f"answer to {q}"} for q in
            ["What is masked language modeling?", "Who made T5?", "What does a GAN generator do?",
             "How many layers does BERT-Large have?"]]
    path = write(tmp_path, GOOD + "selector: {by: similarity, k: 2, pool: pool.jsonl}\n",
                 "".join(json.dumps(e) + "\n" for e in pool))
    prompt = load_template(path).chat_prompt(HashEmbedder())
    messages = prompt.invoke({"question": "Who made T5?", "context": "ctx"}).to_messages()
    answers = [m.content for m in messages if m.type == "ai"]
    assert len(answers) == 2 and answers[0] == "answer to Who made T5?"  # the same question first
    assert messages[-1].content == "Q: Who made T5? C: ctx"


def test_the_example_pool_is_kept_apart_from_the_eval_questions():
    from assistant.datasets import read_rows
    from assistant.text import keywords

    evals = [set(keywords(r.user_input)) for r in read_rows(ROOT / "evals/datasets/course_qa.jsonl")]
    for line in (ROOT / "prompts/examples/course_pool.jsonl").read_text().splitlines():
        words = set(keywords(json.loads(line)["question"]))
        overlap = max(len(words & e) / len(words | e) for e in evals)
        assert overlap < 0.6, f"pool question too close to an eval question: {line[:80]}"


def test_chain_of_thought_answer_line_is_extracted():
    template = load_template(ROOT / "prompts/chain-of-thought.yaml")
    reply = 'Reasoning: the notes say "BERT masks 15% of words".\nAnswer: 15% of the words.'
    assert template.final_answer(reply) == "15% of the words."
    assert template.final_answer("no answer line here") == "no answer line here"


@pytest.fixture
def run(fake_env):
    from click.testing import CliRunner

    from assistant.cli import cli

    return lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_prompts_list_show_and_validate(run, tmp_path):
    listed = run("prompts", "list")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == [p.stem for p in SHIPPED]
    shown = run("prompts", "show", "citing")
    assert shown.exit_code == 0 and shown.output == (ROOT / "prompts/citing.yaml").read_text()
    assert run("prompts", "validate").exit_code == 0
    bad = write(tmp_path, GOOD.replace("{question}", "{question.__class__}"))
    result = run("prompts", "validate", str(SHIPPED[0]), str(bad))
    assert result.exit_code == 2
    assert f"error: {bad}: template:" in result.stderr and "not a plain name" in result.stderr
    assert "1 of 2 template files are invalid" in result.stderr


def test_prompts_render_shows_the_numbered_context_and_tokens(run):
    result = run("prompts", "render", "citing", "-q", "What does self-attention do?", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["model"] == "fake" and not data["abstains"]
    assert "[1] Attention:" in data["prompt"] and data["tokens"] > 0
    assert data["budget"]["prompt_tokens"] <= data["budget"]["limit"]
    assert run("prompts", "render", "nope", "-q", "x").exit_code == 2
