"""The CLI with fakes: output shapes, and every user error as one line with exit code 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import DATA

from assistant.cli import cli


@pytest.fixture
def run(fake_env):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_index_reports_added_then_nothing(run):
    first = run("index")
    assert first.exit_code == 0 and "added" in first.output
    second = run("index")
    assert second.exit_code == 0 and "nothing embedded" in second.output
    rebuilt = run("index", "--rebuild")
    assert rebuilt.exit_code == 0 and "added" in rebuilt.output


def test_retrieve_json(run):
    result = run("retrieve", "What percentage of tokens does BERT mask?", "--k", "2", "--json")
    hits = json.loads(result.stdout)
    assert result.exit_code == 0 and len(hits) == 2
    assert set(hits[0]) == {"rank", "score", "section", "text", "source", "chunk_id", "relevance"}
    assert "15%" in hits[0]["text"]


def test_retrieve_text(run):
    result = run("retrieve", "multi-head attention")
    assert result.exit_code == 0 and "[1] Attention" in result.stdout


def test_retrieve_batch(run):
    result = run("retrieve", "--batch", str(DATA / "questions.jsonl"), "--k", "1")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    assert lines[0]["user_input"] and len(lines[0]["hits"]) == 1


def test_ask_streams_then_lists_sources(run):
    result = run("ask", "What percentage of tokens does BERT mask?")
    assert result.exit_code == 0
    answer, sources = result.stdout.split("\nSources:\n")
    assert "15%" in answer and "Masked Language Modeling" in sources


def test_ask_prints_the_course_first_then_the_model_once(run):
    out = run("ask", "What percentage of tokens does BERT mask?").stdout
    course, model = out.split("Model: ", 1)
    assert course.startswith("The course says (") and "15%" in course
    extractive = run("ask", "What percentage of tokens does BERT mask?", "--model", "extractive").stdout
    quote = extractive.split("\nSources:")[0]
    assert "Model:" not in quote and "Not supported" not in quote
    first = quote.splitlines()[1].strip()
    assert quote.count(first) == 1  # the quote is not printed twice
    near = run("ask", "How many layers does GPT have according to the course?").stdout
    assert near.startswith("The course does not say") and "Model:" not in near


def test_ask_json(run):
    result = run("ask", "What percentage of tokens does BERT mask?", "--json")
    data = json.loads(result.stdout)
    assert {"answer", "abstained", "sources", "model", "prompt", "timings"} <= set(data)
    assert data["model"] == "fake" and not data["abstained"] and data["sources"]


def test_ask_off_topic_says_not_covered(run):
    result = run("ask", "Who won the 2018 FIFA World Cup?", "--json")
    data = json.loads(result.stdout)
    assert data["abstained"] and "does not cover" in data["answer"]


def test_ask_batch(run):
    result = run("ask", "--batch", str(DATA / "questions.jsonl"))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    assert all(x["answer"] and "sources" in x and x["user_input"] for x in lines)


def test_models_json(run):
    data = json.loads(run("models", "--json").stdout)
    names = {m["name"] for m in data}
    assert "smollm2-135m-instruct" in names and "fake" not in names  # fake: tests only
    assert "fake" not in run("models").stdout.split()
    assert all({"name", "kind", "source", "present"} <= set(m) for m in data)


def test_chat_repl(fake_env):
    result = CliRunner().invoke(cli, ["chat"], input="What is multi-head attention?\n\n")
    assert result.exit_code == 0 and "Sources:" in result.stdout


def test_chat_searches_a_follow_up_with_the_subject_before_it(fake_env):
    said = "What is BERT?\nand how many parameters does it have?\nWhat is GPT?\n\n"
    result = CliRunner().invoke(cli, ["chat"], input=said)
    assert result.exit_code == 0
    assert result.stdout.count("(searched for:") == 1  # standalone questions are searched as asked
    assert "(searched for: How many parameters does BERT have?)" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["ask", ""], "the question is empty"),
    (["ask", "   "], "the question is empty"),
    (["ask", "x" * 1001], "limit is 1000"),
    (["ask", "hi", "--model", "nope"], "unknown model 'nope'"),
    (["ask", "hi", "--template", "nope"], "unknown template 'nope'"),
    (["ask", "hi", "--max-new-tokens", "0"], "max_new_tokens"),
    (["ask", "hi", "--model", "hf:"], "needs a hub id or a folder"),
    (["ask", "hi", "--model", "hf:/path/to/checkpoint"], "model folder not found: /path/to/checkpoint"),
    (["ask", "hi", "--model", "hf:./nope"], "model folder not found: ./nope"),
    (["ask", "hi", "--model", "hf:~/no/such/model"], "model folder not found: ~/no/such/model"),
    (["ask", "hi", "--model", "openai:nope"], "malformed model"),
    (["--device", "tpu", "ask", "hi"], "choose cpu, cuda, cuda:N or mps"),
    (["retrieve"], "give a QUESTION, or --batch FILE.jsonl for many"),
    (["retrieve", "hi", "--batch", "q.jsonl"], "give either a QUESTION or --batch"),
    (["ask", "--batch", "/dev/zero"], "larger than"),  # read bounded, never whole
    (["--corpus", "/no/such/folder", "index"], "corpus folder not found"),
    (["retrieve", "--batch", "/no/such/file.jsonl"], "cannot read"),
])
def test_user_errors_are_one_line_and_exit_2(fake_env, args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_bad_batch_line_is_named(fake_env, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_input": "ok"}\n{"user_input": \n')
    result = CliRunner().invoke(cli, ["ask", "--batch", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2: invalid JSON" in result.stderr


def test_missing_corpus_with_no_index(fake_env, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSELAB_CORPUS", str(tmp_path / "gone"))
    result = CliRunner().invoke(cli, ["ask", "What is attention?"])
    assert result.exit_code == 2 and "corpus folder not found" in result.stderr


def test_rebuild_repairs_a_corrupt_index_in_a_new_process(fake_env, tmp_path):
    import os
    import subprocess
    import sys

    def courselab(*args):
        return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True,
                              text=True, env=dict(os.environ), timeout=300)

    assert courselab("index").returncode == 0
    (tmp_path / "index" / "chroma.sqlite3").write_bytes(b"garbage\n")
    broken = courselab("retrieve", "attention")
    assert broken.returncode == 2 and "courselab index --rebuild" in broken.stderr
    repaired = courselab("index", "--rebuild")
    assert repaired.returncode == 0, repaired.stderr
    assert courselab("retrieve", "attention").returncode == 0


@pytest.mark.parametrize("model", ["smollm2-135m-instruct", "flan-t5-base"])
def test_bench_generate_on_random_weights(model):
    result = CliRunner().invoke(cli, ["bench", "generate", "--random-weights", "--model", model,
                                      "--prompts", "2", "--new-tokens", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{model} (random) on cpu, 2 prompts")
    assert "baseline" in lines[1] and "courselab" in lines[2] and lines[3].startswith("speed-up:")
