"""Run a promptfoo config with courselab, and write promptfoo's output JSON.

Every prompt x provider x test x repeat is one row of `results.jsonl` in the run
folder (the test's vars, the rendered prompt, the output, each assertion as
{score, pass, reason}); `summary.json` counts passes, failures and errors per
prompt and provider as promptfoo does. `write_output` writes the same run in
promptfoo's format (version 3), which `promptfoo import` loads into its viewer.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from assistant.datasets import Row
from assistant.errors import CourselabError, InputError
from assistant.evaluation.metrics import Sample, assertion
from assistant.evaluation.promptfoo import Case, Prompt, PromptfooSuite, Provider, parse_provider

JUDGE = ("You grade an answer against a rubric.\nRubric: {rubric}\nAnswer: {output}\n"
         "Reply with one grade from 1 (fails the rubric) to 5 (meets it fully).\nGrade:")


@dataclass
class Output:
    text: str = ""
    latency_s: float = 0.0
    tokens: dict = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    context: str = ""
    extra: dict = field(default_factory=dict)
    finish: str | None = None
    error: str | None = None


# --- providers --------------------------------------------------------------------------------
class OpenAIChat:
    """An OpenAI-compatible chat endpoint, called as promptfoo's openai:chat provider calls it."""

    def __init__(self, provider: Provider):
        self.provider = provider

    def __call__(self, messages: list[tuple[str, str]]) -> Output:
        import httpx

        p = self.provider
        body = {"model": p.model.removeprefix("openai:"),
                "messages": [{"role": r, "content": t} for r, t in messages], **p.options,
                **p.passthrough}
        headers = {"Authorization": f"Bearer {p.api_key}"} if p.api_key else {}
        start = time.perf_counter()
        try:
            response = httpx.post(f"{p.base_url}/chat/completions", json=body, headers=headers,
                                  timeout=600)
            data = response.json()
        except (httpx.HTTPError, ValueError) as e:
            return Output(error=f"request to {p.base_url} failed: {e}")
        latency = time.perf_counter() - start
        if response.status_code != 200 or "choices" not in data:
            message = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
            return Output(latency_s=latency, error=f"HTTP {response.status_code}: {message or data}")
        choice, usage = data["choices"][0], data.get("usage") or {}
        card = data.get("courselab") or {}
        return Output(str(choice["message"].get("content") or ""), latency,
                      {"prompt": usage.get("prompt_tokens", 0),
                       "completion": usage.get("completion_tokens", 0)},
                      _context(card.get("sources")), {"courselab": card} if card else {},
                      choice.get("finish_reason"))


class LocalModel:
    """A courselab registry model, with the provider's options as generation options."""

    def __init__(self, provider: Provider, settings):
        from assistant.models import model_for

        opts = dict(provider.options)
        if "max_tokens" in opts:
            opts["max_new_tokens"] = opts.pop("max_tokens")
        if isinstance(opts.get("stop"), str):
            opts["stop"] = [opts["stop"]]
        self.model = model_for(settings, provider.model, opts)

    def __call__(self, messages: list[tuple[str, str]]) -> Output:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        start = time.perf_counter()
        reply = self.model.invoke([kinds[r](t) for r, t in messages])
        usage = reply.usage_metadata or {}
        return Output(str(reply.content), time.perf_counter() - start,
                      {"prompt": usage.get("input_tokens", 0),
                       "completion": usage.get("output_tokens", 0)})


class LocalAssistant:
    """`courselab/<template>`: the course assistant answers the rendered prompt as the question."""

    def __init__(self, provider: Provider, settings):
        from assistant.chain.factory import build_assistant

        self.assistant = build_assistant(settings, settings.model,
                                         provider.model.removeprefix("courselab/"))

    def __call__(self, messages: list[tuple[str, str]]) -> Output:
        question = next((t for r, t in reversed(messages) if r == "user"), "")
        start = time.perf_counter()
        answer = self.assistant.answer(question)
        card = answer.to_dict()
        return Output(getattr(answer, "lead", None) or answer.answer, time.perf_counter() - start,
                      {"prompt": answer.tokens.get("input", 0),
                       "completion": answer.tokens.get("output", 0)},
                      _context(card.get("sources")), {"courselab": card})


def caller(provider: Provider, settings) -> Callable[[list[tuple[str, str]]], Output]:
    if provider.base_url:
        return OpenAIChat(provider)
    if provider.model.startswith("courselab/"):
        return LocalAssistant(provider, settings)
    return LocalModel(provider, settings)


def _context(sources) -> str:
    return "\n".join(str(s.get("text", "")) for s in sources or [] if isinstance(s, dict))


# --- the run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    prompt_idx: int
    provider_idx: int
    case: Case
    repeat: int


def run_promptfoo(suite: PromptfooSuite, settings, out: Path,
                  progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Every job, `maxConcurrency` at a time; rows in a stable order, written atomically."""
    callers = [caller(p, settings) for p in suite.providers]  # loaded once, before any thread
    graders: dict[str, Callable] = {}
    embed = _lazy_embedder(settings)
    jobs = [Job(i, j, case, r) for j in range(len(suite.providers))
            for i in range(len(suite.prompts)) for case in suite.tests for r in range(suite.repeat)]
    done = 0
    lock = threading.Lock()  # the workers share `done` and `graders`

    def grader(ident):
        with lock:
            return _grader(ident, graders, settings, suite)

    def one(job: Job) -> dict:
        nonlocal done
        row = _evaluate(suite, job, callers[job.provider_idx], embed, grader)
        with lock:
            done += 1
            count = done
        if progress:
            progress(count, len(jobs))
        return row

    with ThreadPoolExecutor(suite.max_concurrency) as pool:
        rows = list(pool.map(one, jobs))
    Path(out).mkdir(parents=True, exist_ok=True)
    write_atomic(Path(out) / "results.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rows


def _evaluate(suite: PromptfooSuite, job: Job, call, embed, grader) -> dict:
    prompt, provider, case = suite.prompts[job.prompt_idx], suite.providers[job.provider_idx], job.case
    messages = _messages(prompt, case)
    try:
        output = call(messages)
    except CourselabError as e:
        output = Output(error=str(e))
    except Exception as e:  # noqa: BLE001 - one failed call is this row's error, not the run's
        output = Output(error=f"{type(e).__name__}: {e}")
    row = {"item_id": f"test-{case.index + 1}", "config": f"{prompt.label} · {provider.label}"
           + (f" · r{job.repeat}" if suite.repeat > 1 else ""),
           "prompt_idx": job.prompt_idx, "provider_idx": job.provider_idx,
           "test_idx": case.index, "repeat": job.repeat, "description": case.description,
           "vars": case.vars, "prompt": "\n\n".join(t for _, t in messages),
           "provider": provider.id, "provider_label": provider.label, "prompt_label": prompt.label,
           "answer": output.text, "latency_s": round(output.latency_s, 4), "tokens": output.tokens,
           "finish_reason": output.finish, "error": output.error, **output.extra,
           # the harness's row fields, so the Evals tab and report helpers can show the run
           "template": prompt.label, "model": provider.label, "k": "-", "mode": "promptfoo",
           "question": "", "reference": None, "hits": _hits(output.extra)}
    row["question"] = row["prompt"]
    if output.error:
        return {**row, "pass": False, "score": 0.0, "assertions": [], "named_scores": {},
                "metrics": {}}
    context = case.vars.get("context") if isinstance(case.vars.get("context"), str) else output.context
    sample = Sample(Row(user_input=row["prompt"] or "-"), output.text, False, context or "", [],
                    output.latency_s, embed=embed)
    results = []
    for a in case.asserts:
        try:
            if a.type.removeprefix("not-") == "llm-rubric":
                judge = grader(a.provider)
                sample.judge = lambda s, a=a, judge=judge: judge(
                    [("user", JUDGE.format(rubric=a.value, output=s.answer))]).text
            result = assertion(a.type, sample, a.value, a.threshold)
        except CourselabError as e:
            result = {"score": None, "pass": None, "reason": str(e), "error": True}
        except Exception as e:  # noqa: BLE001 - an assertion that broke is this row's error
            result = {"score": None, "pass": None, "reason": f"{type(e).__name__}: {e}",
                      "error": True}
        results.append({**result, "assertion": a.to_dict()})
    verdict = _verdict(case, results)
    metrics = {"pass": {"score": float(verdict["pass"]), "pass": verdict["pass"], "reason": ""},
               "score": {"score": verdict["score"], "pass": verdict["pass"], "reason": ""},
               **{m: {"score": round(v, 4), "pass": None, "reason": ""}
                  for m, v in verdict["named_scores"].items()}}
    return {**row, **verdict, "metrics": metrics}


def _hits(extra: dict) -> list[dict]:
    sources = (extra.get("courselab") or {}).get("sources") or []
    return [{"section": s.get("section", ""), "chunk_id": s.get("chunk_id")} for s in sources
            if isinstance(s, dict)]


def _messages(prompt: Prompt, case: Case) -> list[tuple[str, str]]:
    messages = prompt.render(case.vars)
    if case.prefix or case.suffix:
        role, text = messages[-1]
        messages[-1] = (role, case.prefix + text + case.suffix)
    return messages


def _verdict(case: Case, results: list[dict]) -> dict:
    """promptfoo's rules: weighted mean score; pass when every assertion passes (or the
    test's threshold is met); an assertion that could not be computed is an error."""
    errors = [r["reason"] for r in results if r.get("error")]
    if errors:
        return {"pass": False, "score": 0.0, "assertions": results, "named_scores": {},
                "error": f"assertion error: {errors[0]}"}
    # an assertion without a score (e.g. context-faithfulness on an empty output) is left out
    scored = [r for r in results if r.get("score") is not None]
    weights = [r["assertion"].get("weight", 1.0) for r in scored]
    total = sum(weights)
    score = sum(w * r["score"] for w, r in zip(weights, scored)) / total if total else 1.0
    passed = (all(r["pass"] for r in scored) if case.threshold is None
              else score >= case.threshold)
    named: dict[str, list] = {}
    for w, r in zip(weights, scored):
        if r["assertion"].get("metric"):
            named.setdefault(r["assertion"]["metric"], []).append((w, r["score"]))
    named_scores = {m: sum(w * s for w, s in v) / (sum(w for w, _ in v) or 1) for m, v in named.items()}
    return {"pass": passed, "score": round(score, 4), "assertions": results,
            "named_scores": named_scores}


def _grader(ident: str | None, graders: dict, settings, suite: PromptfooSuite):
    if not ident:
        raise InputError("llm-rubric needs a grader: options.provider in the test or defaultTest")
    if ident not in graders:
        graders[ident] = caller(parse_provider(ident, 0, str(suite.path)), settings)
    return graders[ident]


def _lazy_embedder(settings):
    holder: dict = {}

    def embed(texts: list[str]):
        if "e" not in holder:
            from assistant.retrieval.embeddings import get_embedder

            holder["e"] = get_embedder(settings.embedder, settings.cache_dir)
        return holder["e"].embed_documents(texts)

    return embed


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- summary and promptfoo's output JSON ------------------------------------------------------
def summarize_promptfoo(suite: PromptfooSuite, rows: list[dict]) -> dict:
    """Counts as promptfoo reports them, plus the harness's cell shape (the Evals tab reads it:
    `metrics` with means and 95% CIs of pass, score and each named metric)."""
    cells = []
    for (i, j), mine in _by_cell(rows).items():
        cells.append({"cell": f"{suite.prompts[i].label} · {suite.providers[j].label}",
                      "prompt": suite.prompts[i].label, "provider": suite.providers[j].label,
                      "rows": len(mine), **_counts(mine), "named_scores": _named(mine),
                      "metrics": _means(mine), "attribution": {}})
    totals = _counts(rows)
    return {"kind": "promptfoo", "description": suite.description, "config": str(suite.path),
            "tests": len(suite.tests), "rows": len(rows), "cells": cells, **totals,
            "comparisons": [], "gates": [],
            "passed": totals["failures"] == 0 and totals["errors"] == 0}


def _means(rows: list[dict]) -> dict:
    from assistant.evaluation.stats import mean_ci

    names = list(dict.fromkeys(n for r in rows for n in r["metrics"]))
    out = {}
    for name in names:
        values = [r["metrics"][name]["score"] for r in rows
                  if not r.get("error") and name in r["metrics"]]
        mean, lo, hi = mean_ci(values, 0)
        clean = [None if x != x else round(x, 4) for x in (mean, lo, hi)]  # NaN: nothing scored
        out[name] = {"mean": clean[0], "ci": clean[1:], "n": len(values)}
    return out


def _by_cell(rows: list[dict]) -> dict:
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["prompt_idx"], r["provider_idx"]), []).append(r)
    return cells


def _counts(rows: list[dict]) -> dict:
    errors = sum(bool(r.get("error")) for r in rows)
    successes = sum(bool(r["pass"]) and not r.get("error") for r in rows)
    return {"successes": successes, "failures": len(rows) - successes - errors, "errors": errors}


def _named(rows: list[dict]) -> dict:
    sums: dict = {}
    for r in rows:
        for m, s in (r.get("named_scores") or {}).items():
            total, n = sums.get(m, (0.0, 0))
            sums[m] = (total + s, n + 1)
    return {m: round(t / n, 4) for m, (t, n) in sums.items()}


def write_output(suite: PromptfooSuite, rows: list[dict], path: Path) -> Path:
    """The run as promptfoo's output JSON (results version 3), for `promptfoo import`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    prompts = []
    for (i, j), mine in _by_cell(rows).items():
        prompt, counts = suite.prompts[i], _counts(mine)
        named, counted = {}, {}
        for r in mine:
            for m, s in (r.get("named_scores") or {}).items():
                named[m] = named.get(m, 0) + s
                counted[m] = counted.get(m, 0) + 1
        prompts.append({
            "id": f"{i}", "raw": prompt.raw, "label": prompt.label,
            "provider": suite.providers[j].label,
            "metrics": {"score": sum(r["score"] for r in mine), "testPassCount": counts["successes"],
                        "testFailCount": counts["failures"], "testErrorCount": counts["errors"],
                        "assertPassCount": sum(a["pass"] is True for r in mine for a in r["assertions"]),
                        "assertFailCount": sum(a["pass"] is False for r in mine for a in r["assertions"]),
                        "totalLatencyMs": int(sum(r["latency_s"] for r in mine) * 1000),
                        "tokenUsage": _usage(mine), "namedScores": named,
                        "namedScoresCount": counted, "cost": 0}})
    cell_index = {key: n for n, key in enumerate(_by_cell(rows))}
    results = [_result(suite, r, cell_index[(r["prompt_idx"], r["provider_idx"])]) for r in rows]
    totals = _counts(rows)
    data = {"evalId": f"eval-courselab-{uuid.uuid4().hex[:8]}-{now}",
            "results": {"version": 3, "timestamp": now + "Z", "prompts": prompts,
                        "results": results, "stats": {**totals, "tokenUsage": _usage(rows)}},
            "config": {k: v for k, v in suite.raw.items() if k != "outputPath"},
            "shareableUrl": None,
            "metadata": {"producer": "courselab", "exportedAt": now + "Z"}}
    write_atomic(Path(path), json.dumps(_redact(data), indent=1, default=str))
    return Path(path)


def _result(suite: PromptfooSuite, r: dict, prompt_idx: int) -> dict:
    provider, case = suite.providers[r["provider_idx"]], suite.tests[r["test_idx"]]
    failed = [a for a in r["assertions"] if a["pass"] is False]
    reason = r.get("error") or (failed[0]["reason"] if failed else "All assertions passed")
    return {
        "id": str(uuid.uuid4()), "promptIdx": prompt_idx, "testIdx": r["test_idx"],
        "promptId": str(r["prompt_idx"]),
        "prompt": {"raw": r["prompt"], "label": r["prompt_label"], "config": {}},
        "provider": {"id": provider.id, "label": provider.label},
        "vars": r["vars"], "latencyMs": int(r["latency_s"] * 1000), "cost": 0,
        "response": {"output": r["answer"], "tokenUsage": _usage([r]),
                     "finishReason": r.get("finish_reason"), **({"metadata": {"courselab": r[
                         "courselab"]}} if r.get("courselab") else {})},
        "success": bool(r["pass"]) and not r.get("error"), "score": r["score"],
        "namedScores": r.get("named_scores") or {},
        "error": None if r["pass"] else reason,
        "failureReason": 0 if r["pass"] else (2 if r.get("error") else 1),
        "gradingResult": None if not r["assertions"] else {
            "pass": bool(r["pass"]), "score": r["score"], "reason": reason,
            "namedScores": r.get("named_scores") or {},
            "componentResults": [{"pass": bool(a["pass"]), "score": a["score"] or 0,
                                  "reason": a["reason"], "assertion": a["assertion"]}
                                 for a in r["assertions"]]},
        "testCase": {"description": case.description, "vars": r["vars"],
                     "assert": [a.to_dict() for a in case.asserts], "metadata": case.metadata,
                     "options": {}},
        "metadata": case.metadata,
    }


def _usage(rows: list[dict]) -> dict:
    p = sum((r.get("tokens") or {}).get("prompt", 0) for r in rows)
    c = sum((r.get("tokens") or {}).get("completion", 0) for r in rows)
    return {"prompt": p, "completion": c, "total": p + c, "cached": 0, "numRequests": len(rows)}


def _redact(data):
    """No API key leaves the machine in the output file (promptfoo writes [REDACTED] too)."""
    if isinstance(data, dict):
        return {k: "[REDACTED]" if k == "apiKey" else _redact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact(v) for v in data]
    return data
