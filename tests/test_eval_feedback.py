"""`courselab eval` on feedback: down-votes skipped until a reference is written, progress lines
off a terminal, and `eval compare` listing the items that changed with both answers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import DATA

from assistant.cli import cli
from assistant.cli import progress as progress_cli
from assistant.evaluation.runner import Runner
from assistant.evaluation.suite import make_suite
from assistant.feedback import append_feedback, feedback_row
from assistant.models.fake import FakeChatModel

TURN = {"question": "What percentage of tokens does BERT mask?",
        "query": "What percentage of tokens does BERT mask?",
        "answer": "BERT masks all of the tokens.", "abstained": False,
        "sources": [{"section": "BERT", "source": "course.md", "score": 0.6, "chunk_id": "abc",
                     "text": "BERT masks 15% of the input tokens."}],
        "model": "fake", "template": "default"}


@pytest.fixture
def feedback(tmp_path):
    path = tmp_path / "feedback.jsonl"
    rows = [feedback_row(TURN, "down") for _ in range(2)]
    for row in rows:
        append_feedback(path, row)
    return path, rows


def test_down_votes_as_a_dataset_score_no_abstention_and_print_no_false_failures(
        fake_env, tmp_path, feedback):
    path, _ = feedback
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["eval", "run", "--dataset", str(path), "--metrics",
                                      "abstention,key_facts,token_f1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    means = summary["cells"][0]["metrics"]
    assert means["abstention"]["n"] == 0 and means["abstention"]["mean"] is None
    assert summary["cells"][0]["attribution"] == {}
    assert "failures on" not in result.stdout and "abstention" not in result.stdout


def test_references_command_writes_what_the_evaluator_types(fake_env, tmp_path, feedback):
    from assistant.datasets import read_rows

    path, (first, second) = feedback
    listed = CliRunner().invoke(cli, ["eval", "references", str(path), "--list"])
    assert listed.exit_code == 0 and "2 row(s)" in listed.stdout and first["id"] in listed.stdout
    result = CliRunner().invoke(cli, ["eval", "references", str(path)],
                                input="BERT masks 15% of the input tokens.\n-\n")
    assert result.exit_code == 0, result.output
    assert "BERT masks all of the tokens." in result.stdout  # the bad answer is shown
    assert "2 reference(s) written" in result.stdout
    rows = {r.id: r for r in read_rows(path)}
    assert rows[first["id"]].reference == "BERT masks 15% of the input tokens."
    assert rows[second["id"]].reference is None
    assert not any(r.metadata.get("needs_reference") for r in rows.values())
    scored = CliRunner().invoke(cli, ["eval", "run", "--dataset", str(path), "--metrics",
                                      "abstention,token_f1", "--out", str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert scored.exit_code == 0 and summary["cells"][0]["metrics"]["abstention"]["n"] == 2


def test_references_command_errors_are_one_line(fake_env, tmp_path):
    result = CliRunner().invoke(cli, ["eval", "references", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and result.stderr.startswith("error: no feedback file")


def test_a_run_off_a_terminal_prints_progress_lines(fake_env, tmp_path, monkeypatch):
    monkeypatch.setattr(progress_cli, "PROGRESS_EVERY_S", 0.0)
    result = CliRunner().invoke(cli, ["eval", "run", "--dataset", str(DATA / "tiny_qa.jsonl"),
                                      "--metrics", "key_facts", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("evaluating: ")]
    assert lines and lines[-1].startswith("evaluating: 8/8 rows (100%)")


def test_progress_lines_come_at_intervals():
    seen = []
    progress = progress_cli.ProgressLines(every_s=3600)
    import click

    real = click.echo
    try:
        progress_cli.click.echo = lambda msg, **kw: seen.append(msg)
        for done in range(10):
            progress(done, 10)
        progress(10, 10)
    finally:
        progress_cli.click.echo = real
    assert len(seen) == 2 and seen[-1].startswith("evaluating: 10/10")


def test_compare_lists_changed_items_with_both_answers_then_the_tests(fake_env, tmp_path,
                                                                      settings):
    qa = DATA / "tiny_qa.jsonl"
    good = make_suite({"description": "a", "datasets": [qa], "templates": ["default"],
                       "models": ["fake"], "metrics": ["key_facts"]})
    other = make_suite({"description": "b", "datasets": [qa], "templates": ["zero-shot"],
                        "models": ["fake"], "metrics": ["key_facts"]})
    Runner(good, settings, tmp_path / "a").run()
    Runner(other, settings, tmp_path / "b", use_cache=False,
           models={"fake": FakeChatModel(replies=["no idea"] * 6)}).run()
    result = CliRunner().invoke(cli, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "regressed on key_facts" in out and "tiny_qa/t1" in out
    item = out.splitlines()[out.splitlines().index(next(x for x in out.splitlines()
                                                        if x.strip().startswith("tiny_qa/t1")))]
    assert "What percentage of tokens does BERT mask?" in item
    side = out.splitlines()[out.splitlines().index(item) + 1]
    assert "A pass:" in side and "| B fail: no idea" in side and "15%" in side
    assert out.index("regressed on key_facts") < out.index("Paired tests:")
