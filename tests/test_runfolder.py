"""Run folders: reading never deletes rows, one runner per folder, atomic reports, fingerprints,
and a run killed with SIGKILL resumes with nothing lost and nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import DATA, ROOT

from assistant.errors import InputError
from assistant.evaluation import runfolder
from assistant.evaluation.suite import make_suite

QA = DATA / "tiny_qa.jsonl"


def test_reading_keeps_every_byte_and_skips_only_bad_lines(tmp_path):
    path = tmp_path / "results.jsonl"
    data = b'{"i": 1}\n{"i": 2, "tr\n{"i": 3}\n{"i": 4, "cut'
    path.write_bytes(data)
    from assistant.evaluation.runner import read_results as runner_read

    assert [r["i"] for r in runfolder.read_results(path)] == [1, 3]
    assert path.read_bytes() == data  # a viewer changes nothing
    assert [r["i"] for r in runner_read(path)] == [1, 3]
    assert path.read_bytes() == b'{"i": 1}\n{"i": 2, "tr\n{"i": 3}\n'  # only the cut tail went


def test_a_complete_last_row_without_newline_is_kept(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"i": 1}\n{"i": 2}')
    assert runfolder.repair_tail(path) == 0
    assert path.read_bytes() == b'{"i": 1}\n{"i": 2}\n'


def test_a_second_runner_on_the_folder_is_refused(tmp_path):
    with runfolder.claim(tmp_path / "run"), pytest.raises(InputError, match="another run"), \
            runfolder.claim(tmp_path / "run"):
        pass
    with runfolder.claim(tmp_path / "run"):  # released afterwards
        pass


def test_summary_and_report_are_written_atomically(tmp_path, monkeypatch):
    from assistant.evaluation import report

    path = tmp_path / "summary.json"
    path.write_text('{"old": true}')

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        report.write_summary({"new": True}, path)
    assert json.loads(path.read_text()) == {"old": True}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no part file left


def test_resume_notices_changed_corpus_and_templates(settings, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "default.yaml").write_bytes((ROOT / "prompts" / "default.yaml").read_bytes())
    settings = settings.model_copy(update={"prompts_dir": prompts})
    suite = make_suite({"datasets": [QA], "templates": ["default"], "models": ["fake"]})
    out = tmp_path / "run"
    runfolder.check_inputs(out, settings, suite)
    runfolder.check_inputs(out, settings, suite)  # unchanged: fine
    with open(prompts / "default.yaml", "a") as f:
        f.write("# edited\n")
    with pytest.raises(InputError, match="templates changed"):
        runfolder.check_inputs(out, settings, suite)
    (out / runfolder.INPUTS).unlink()
    runfolder.check_inputs(out, settings, suite)
    next(settings.corpus_dir.rglob("*.md")).write_text("# New\n\nAnother course.\n")
    with pytest.raises(InputError, match="corpus changed"):
        runfolder.check_inputs(out, settings, suite)


def test_resume_under_another_precision_or_device_is_refused(settings, tmp_path):
    suite = make_suite({"datasets": [QA], "templates": ["default"], "models": ["fake"]})
    out = tmp_path / "run"
    runfolder.check_inputs(out, settings.model_copy(update={"precision": "fp32"}), suite)
    with pytest.raises(InputError, match="weights changed"):
        runfolder.check_inputs(out, settings.model_copy(update={"precision": "int8"}), suite)
    with pytest.raises(InputError, match="weights changed"):
        runfolder.check_inputs(out, settings.model_copy(update={"precision": "fp32",
                                                                "device": "cuda:1"}), suite)


def test_a_run_records_what_auto_meant_so_a_new_meaning_does_not_resume_it(settings, tmp_path,
                                                                          monkeypatch):
    from assistant.models import precision

    suite = make_suite({"datasets": [QA], "templates": ["default"], "models": ["fake"]})
    out = tmp_path / "run"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # auto meant fp32 here
    runfolder.check_inputs(out, settings.model_copy(update={"precision": "auto"}), suite)
    runfolder.check_inputs(out, settings.model_copy(update={"precision": "fp32"}), suite)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # now auto is bf16
    with pytest.raises(InputError, match="weights changed"):
        runfolder.check_inputs(out, settings.model_copy(update={"precision": "auto"}), suite)


def test_the_generation_cache_key_holds_the_precision():
    from types import SimpleNamespace

    from assistant.chain.assistant import _cache_key

    def key(precision):
        model = SimpleNamespace(precision=precision, _loaded=None, device="cpu")
        return _cache_key(SimpleNamespace(model_name="m", model=model), {"max_new_tokens": 8}, "p")

    assert key("bf16") != key("fp32") != key("int8")
    assert key("fp32") == _cache_key(SimpleNamespace(model_name="m", model=object()),
                                     {"max_new_tokens": 8}, "p")  # old fp32 entries stay valid


def test_datasets_with_the_same_stem_get_distinct_names():
    names = runfolder.dataset_names(["x/qa.jsonl", "y/qa.jsonl", "y/qa.csv", "z/other.jsonl"])
    assert len(set(names.values())) == 4 and names["z/other.jsonl"] == "other"


SLOW_RUN = """
import sys, time
from assistant.models.fake import FakeChatModel
original = FakeChatModel._generate
def slow(self, *a, **k):
    time.sleep(0.15)
    return original(self, *a, **k)
FakeChatModel._generate = slow
from assistant.cli import main
sys.argv = ["courselab"] + sys.argv[1:]
main()
"""


def _env(fake_env, tmp_path):
    return {**os.environ, "PYTHONPATH": str(ROOT), "COURSELAB_RUNS": str(tmp_path / "runs")}


def test_kill_9_during_an_eval_run_resumes_without_loss_or_duplicates(fake_env, tmp_path):
    out = tmp_path / "run"
    args = ["eval", "run", "--dataset", str(QA), "--templates", "default,zero-shot,citing",
            "--metrics", "key_facts,abstention", "--no-cache", "--out", str(out)]
    env = _env(fake_env, tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = runfolder.read_results(results)
    assert 8 <= len(before) < 24 and not (out / "summary.json").exists()
    with open(results, "ab") as f:
        f.write(b'{"item_id": "tiny_qa/t1", "conf')  # as if killed mid-line too
    done = subprocess.run([sys.executable, "-m", "assistant", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = runfolder.read_results(results)
    keys = [(r["item_id"], r["config"]) for r in rows]
    assert len(keys) == len(set(keys)) == 8 * 3  # nothing lost, nothing twice
    assert all(r in rows for r in before)  # rows written before the kill were kept as they were
    assert json.loads((out / "summary.json").read_text())["rows"] == 24


def test_viewers_use_the_read_only_reader():
    from assistant.evaluation import compare_runs
    from assistant.ui import evals

    assert evals.read_results is runfolder.read_results
    assert compare_runs.read_results is runfolder.read_results


def test_the_cli_refuses_a_folder_another_run_holds(fake_env, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli

    out = tmp_path / "run"
    with runfolder.claim(out):
        result = CliRunner().invoke(cli, ["eval", "run", "--dataset", str(QA), "--out", str(out)])
    assert result.exit_code == 2 and "another run is writing" in result.output
    assert not (out / "results.jsonl").exists()
