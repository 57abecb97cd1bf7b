"""Runs: one row per item x cell, cached reruns, resume after a kill, errors kept apart."""

from __future__ import annotations

import json

import pytest
from conftest import DATA

from assistant.evaluation.runner import RESULTS, Runner, read_results
from assistant.evaluation.suite import make_suite
from assistant.models.fake import FakeChatModel

QA = DATA / "tiny_qa.jsonl"
METRICS = ["key_facts", "token_f1", "hit_at_k", "mrr", "abstention", "groundedness"]


def suite(**overrides):
    data = {"description": "test", "datasets": [QA], "templates": ["default", "zero-shot"],
            "models": ["fake"], "metrics": METRICS, **overrides}
    return make_suite(data)


class Flaky(FakeChatModel):
    """Interrupted like a kill on its `fail_at`-th batch."""

    fail_at: int = 2
    batches: int = 0

    def batch(self, inputs, config=None, **kwargs):
        self.batches += 1
        if self.batches == self.fail_at:
            raise KeyboardInterrupt
        return super().batch(inputs, config, **kwargs)


def runner(s, settings, out, model=None, use_cache=True):
    return Runner(s, settings, out, use_cache=use_cache,
                  models={"fake": model} if model is not None else None)


def test_one_row_per_item_and_cell_with_every_metric(settings, tmp_path):
    rows = runner(suite(), settings, tmp_path / "run").run()
    assert len(rows) == 8 * 2
    assert len({(r["item_id"], r["config"]) for r in rows}) == 16
    row = next(r for r in rows if r["item_id"] == "tiny_qa/t2" and r["template"] == "default")
    assert set(row["metrics"]) == set(METRICS)
    assert set(row["metrics"]["key_facts"]) == {"score", "pass", "reason"}
    assert row["prompt"] and row["answer"] and row["hits"] and row["seen"]
    assert row["relevant_seen"] is True and row["tokens"]["input"] > 0
    unanswerable = [r for r in rows if r["item_id"].endswith(("u1", "u2"))]
    assert all(r["abstained"] and r["metrics"]["abstention"]["pass"] for r in unanswerable)


def test_an_unchanged_rerun_is_served_by_the_cache(settings, tmp_path):
    first = runner(suite(), settings, tmp_path / "a")
    rows_a = first.run()
    second = runner(suite(), settings, tmp_path / "b")
    rows_b = second.run()
    assert first.stats["generated"] > 0 and second.stats["generated"] == 0
    assert second.stats["cached"] == first.stats["generated"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "cached"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)


def test_a_killed_run_resumes_without_losing_or_repeating_rows(settings, tmp_path):
    out = tmp_path / "run"
    s = suite(templates=["default", "zero-shot", "citing"])
    with pytest.raises(KeyboardInterrupt):
        runner(s, settings, out, Flaky(fail_at=2), use_cache=False).run()
    written = read_results(out / RESULTS)
    assert len(written) == 8  # the first cell's batch
    with open(out / RESULTS, "a") as f:
        f.write('{"item_id": "tiny_qa/t1", "config": "half a line')  # killed mid-write
    model = FakeChatModel()
    rows = runner(s, settings, out, model, use_cache=False).run()
    keys = [(r["item_id"], r["config"]) for r in rows]
    assert len(keys) == len(set(keys)) == 8 * 3
    assert len(model.history) == 6 * 2  # only the two unfinished cells generated (6 answerable)


def test_resuming_with_another_suite_is_refused(settings, tmp_path):
    from assistant.errors import InputError

    runner(suite(limit=2), settings, tmp_path / "run").run()
    with pytest.raises(InputError, match="different suite"):
        runner(suite(limit=3), settings, tmp_path / "run").run()


def test_a_failing_model_is_an_error_not_a_failure(settings, tmp_path):
    from assistant.errors import ModelError

    class Broken(FakeChatModel):
        def batch(self, inputs, config=None, **kwargs):
            raise ModelError("the server is down")

    from assistant.evaluation.report import summarize

    s = suite(templates=["default"])
    rows = runner(s, settings, tmp_path / "run", Broken()).run()
    failed = [r for r in rows if r["error"]]
    assert len(failed) == 6 and all(r["metrics"] == {} for r in failed)
    cell = summarize(rows, s)["cells"][0]
    assert cell["errors"] == 6 and cell["metrics"]["abstention"]["n"] == 2  # only the 2 that abstained


def test_filter_limit_and_retrieval_only(settings, tmp_path):
    rows = runner(suite(retrieval_only=True, filter=["metadata.section=Attention"]), settings,
                  tmp_path / "r").run()
    assert {r["item_id"] for r in rows} == {"tiny_qa/t2", "tiny_qa/t3"}
    assert all(set(r["metrics"]) == {"hit_at_k", "mrr"} and r["template"] == "-" for r in rows)
    assert len(runner(suite(limit=3), settings, tmp_path / "l").run()) == 6


def test_feedback_down_votes_are_a_dataset(settings, tmp_path):
    from assistant.feedback import append_feedback, feedback_row

    turn = {"question": "and its size?", "query": "How many parameters does BERT-Base have?",
            "answer": "12 layers", "sources": []}
    path = tmp_path / "feedback.jsonl"
    append_feedback(path, feedback_row(turn, "down"))
    append_feedback(path, feedback_row(turn, "up"))
    s = suite(datasets=[path], filter=["metadata.vote=down"], templates=["default"],
              metrics=["hit_at_k", "groundedness"])
    rows = runner(s, settings, tmp_path / "run").run()
    assert len(rows) == 1 and rows[0]["question"] == turn["query"]


def test_the_summary_attributes_failures_to_retrieval_or_generation(settings, tmp_path):
    from assistant.evaluation.report import summarize

    model = FakeChatModel(replies=["no idea"] * 6)  # every answerable item fails key_facts
    s = suite(templates=["default"])
    rows = runner(s, settings, tmp_path / "run", model, use_cache=False).run()
    attribution = summarize(rows, s)["cells"][0]["attribution"]["key_facts"]
    assert attribution["failed"] == 6
    assert attribution["retrieved"] + attribution["not_retrieved"] == 6
    assert attribution["retrieved"] == sum(r["relevant_seen"] is True for r in rows)


def test_cli_run_writes_the_run_folder_and_gates(fake_env, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli

    out = tmp_path / "run"
    args = ["eval", "run", "--dataset", str(QA), "--templates", "default,zero-shot",
            "--metrics", "key_facts,abstention,latency", "--out", str(out)]
    ok = CliRunner().invoke(cli, args + ["--fail-under", "abstention=0.5"])
    assert ok.exit_code == 0, ok.output
    assert {p.name for p in out.iterdir()} >= {"results.jsonl", "summary.json", "report.html",
                                               "plots", "config.json"}
    assert (out / "plots" / "metrics.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "tiny_qa/t1" in html and "<script" not in html
    summary = json.loads((out / "summary.json").read_text())
    assert [c["template"] for c in summary["cells"]] == ["default", "zero-shot"]
    gated = CliRunner().invoke(cli, args + ["--fail-under", "key_facts=1.01"])
    assert gated.exit_code == 1 and "FAILED" in gated.stderr


@pytest.mark.parametrize("option, error", [
    (["--templates", "defualt"], "unknown template 'defualt'"),
    (["--templates", "../../etc/passwd"], "unknown template"),
    (["--models", "nope"], "unknown model 'nope'"),
])
def test_a_misspelt_template_or_model_is_one_error_before_any_run_folder(fake_env, tmp_path,
                                                                         option, error):
    from click.testing import CliRunner

    from assistant.cli import cli

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["eval", "run", "--dataset", str(QA), "--out", str(out)] + option)
    assert result.exit_code == 2 and error in result.stderr, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_run_folder_that_cannot_be_made_is_one_error(fake_env, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli

    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")  # a dangling link where the folder goes
    for out in (tmp_path / "gone", "/proc/courselab-run"):
        result = CliRunner().invoke(cli, ["eval", "run", "--dataset", str(QA), "--out", str(out)])
        assert result.exit_code == 2 and "as a run folder" in result.stderr, result.output


def test_a_suite_file_that_is_not_utf8_is_one_error(fake_env, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli

    (tmp_path / "suite.yaml").write_bytes(b"templates: [default]\n\xff\xfe\x00")
    result = CliRunner().invoke(cli, ["eval", "run", str(tmp_path / "suite.yaml")])
    assert result.exit_code == 2 and "suite.yaml: not UTF-8 text" in result.stderr, result.output


@pytest.mark.parametrize("prompt, error", [
    ("Q: {question} A: {answer:>999999999}", "format spec"),  # would build a gigabyte per row
    ("Q: {question.__class__} A: {answer}", "not a plain name"),
    ("Q: {question} A: {answer} {secret}", "unknown field"),
])
def test_a_judge_prompt_may_use_only_plain_fields(settings, tmp_path, prompt, error):
    from assistant.errors import InputError

    (tmp_path / "grade.txt").write_text(prompt)
    s = suite(templates=["default"], metrics=["key_facts", {"name": "judge", "args": {
        "model": "judge", "prompt": str(tmp_path / "grade.txt")}}])
    r = Runner(s, settings, tmp_path / "run", models={"judge": FakeChatModel(replies=["Grade: 5"])})
    with pytest.raises(InputError, match=error):
        r.check()


def test_an_unknown_judge_model_is_found_before_the_run(settings, tmp_path):
    from assistant.errors import UnknownModelError

    (tmp_path / "grade.txt").write_text("Q: {question} A: {answer}")
    s = suite(templates=["default"], metrics=["key_facts", {"name": "judge", "args": {
        "model": "no-such-judge", "prompt": str(tmp_path / "grade.txt")}}])
    with pytest.raises(UnknownModelError, match="no-such-judge"):
        Runner(s, settings, tmp_path / "run").check()
    assert not (tmp_path / "run").exists()


def test_cli_compare_lists_regressions(fake_env, tmp_path, settings):
    from click.testing import CliRunner

    from assistant.cli import cli

    s = suite(templates=["default"], metrics=["key_facts"])
    Runner(s, settings, tmp_path / "a").run()
    runner(s, settings, tmp_path / "b", FakeChatModel(replies=["no idea"] * 6), use_cache=False).run()
    result = CliRunner().invoke(cli, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0
    assert "regressed on key_facts" in result.output and "tiny_qa/t1" in result.output


@pytest.mark.parametrize("data, error", [
    ({"datasets": []}, "datasets"),
    ({"datasets": ["x.jsonl"], "metrics": ["bleu"]}, "unknown metric 'bleu'"),
    ({"datasets": ["x.jsonl"], "retrieval": {"k": [0]}}, "each k is between 1 and 50"),
    ({"datasets": ["x.jsonl"], "retrieval": {"mode": ["sparse"]}}, "hybrid or dense"),
    ({"datasets": ["x.jsonl"], "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"datasets": ["x.jsonl"], "fail_under": {"speed": 1}}, "unknown metric(s): speed"),
    ({"datasets": ["x.jsonl"], "repeats": 0}, "repeats"),
])
def test_malformed_suites(data, error):
    from assistant.errors import InputError

    with pytest.raises(InputError, match=error.replace("(", r"\(").replace(")", r"\)")):
        make_suite(data, where="suite.yaml")


@pytest.mark.parametrize("name, text, error", [
    ("bad.jsonl", '{"user_input": "ok"}\n{"user_input": \n', "bad.jsonl:2: invalid JSON"),
    ("bad.jsonl", '{"user_input": "ok", "colour": 1}\n', "bad.jsonl:1: colour"),
    ("bad.csv", "id,user_input,reference_contexts\n1,q,not json\n",
     "bad.csv:2: reference_contexts: not JSON"),
    ("bad.csv", "id,user_input,colour\n1,q,red\n", "bad.csv:2: unknown column(s): colour"),
    ("bad.csv", "id,user_input\n1,\n", "bad.csv:2: user_input"),
    ("bad.txt", "x", "a dataset is a .jsonl or .csv file"),
])
def test_malformed_datasets_name_the_line(tmp_path, name, text, error):
    from assistant.datasets import load_dataset
    from assistant.errors import InputError

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=error.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(path)


def test_csv_datasets_load_like_jsonl(tmp_path):
    from assistant.datasets import load_dataset

    path = tmp_path / "qa.csv"
    path.write_text('id,user_input,reference,reference_contexts,metadata\n'
                    'c1,What is BERT?,A model.,"[""BERT is a model""]","{""key_facts"": [""model""]}"\n'
                    'c2,Who won the cup?,,,\n')
    rows = load_dataset(path)
    assert rows[0].reference_contexts == ["BERT is a model"] and rows[0].key_facts == ["model"]
    assert rows[1].reference is None and not rows[1].answerable


def test_the_same_seed_gives_the_same_results(settings, tmp_path):
    from assistant.evaluation.report import summarize

    s = suite(templates=["default"])
    a = summarize(runner(s, settings, tmp_path / "a", use_cache=False).run(), s)
    b = summarize(runner(s, settings, tmp_path / "b", use_cache=False).run(), s)
    drop = ("latency",)
    for ca, cb in zip(a["cells"], b["cells"]):
        assert {k: v for k, v in ca["metrics"].items() if k not in drop} == \
               {k: v for k, v in cb["metrics"].items() if k not in drop}


def test_a_judge_that_answers_garbage_is_an_error_not_a_failure(settings, tmp_path):
    prompt = tmp_path / "grade.txt"
    prompt.write_text("Q: {question}\nA: {answer}\nR: {reference}\nGrade 1-5.")
    s = suite(templates=["default"], metrics=["key_facts", {"name": "judge", "args": {
        "model": "judge", "prompt": str(prompt)}}])
    judge = FakeChatModel(replies=["Grade: 5", "Grade: 4"] + ["I refuse"] * 10)
    r = Runner(s, settings, tmp_path / "run", models={"judge": judge})
    rows = [x for x in r.run() if not x["abstained"]]
    judged = [x["metrics"]["judge"] for x in rows]
    assert [j["score"] for j in judged[:2]] == [1.0, 0.75]
    assert all(j["score"] is None and j.get("error") and "no grade" in j["reason"] for j in judged[2:])
    from assistant.evaluation.report import summarize

    summary = summarize(r.run(), s)["cells"][0]["metrics"]["judge"]
    assert summary["n"] == 2 and summary["errors"] == 8 - 2  # abstentions are judged too


def test_the_extractive_baseline_runs_like_a_model_and_the_report_states_what_a_model_adds(
        settings, tmp_path):
    from assistant.evaluation.report import summarize

    s = suite(templates=["default"], models=["extractive", "fake"],
              metrics=["lead_key_facts", "key_facts", "supported", "abstention"])
    rows = runner(s, settings, tmp_path / "run").run()
    quotes = [r for r in rows if r["model"] == "extractive" and not r["abstained"]]
    assert quotes and all(r["answer"] == r["lead"] and r["prompt"] == "" for r in quotes)
    assert all(r["quote"] and r["lead_from"] in {"answer", "quote"} for r in rows
               if r["model"] == "fake" and not r["abstained"])
    added = summarize(rows, s)["vs_extractive"]
    assert {c["metric"] for c in added} == {"lead_key_facts", "key_facts"}
    assert all("extractive" in c["a"] and "fake" in c["b"] for c in added)
