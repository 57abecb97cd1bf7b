"""`courselab eval run`, `compare` and `references`: batch prompt tests from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import click

from assistant.errors import InputError


@click.group("eval")
def eval_group() -> None:
    """Batch evaluations: suites of datasets x templates x models x retrieval settings."""


def _pairs(values: tuple[str, ...], option: str) -> dict[str, float]:
    out = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            out[name.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"{option} takes METRIC=VALUE, not {value!r}")
    return out


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def build_suite(suite_file, datasets, templates, models, k, mode, metrics, retrieval_only, repeats,
                seed, limit, filters, fail_under, default_model: str):
    """A suite from a file and/or options (options win); without a file, the default model."""
    from assistant.evaluation.suite import load_suite, make_suite

    if suite_file is None and not datasets:
        raise InputError("give a SUITE.yaml or --dataset FILE")
    suite = load_suite(suite_file) if suite_file else None
    data = suite.model_dump() if suite else {"description": "ad-hoc run", "models": [default_model]}
    overrides = {"datasets": [Path(d).resolve() for d in datasets] or None,
                 "templates": _csv(templates), "models": _csv(models),
                 "metrics": _csv(metrics), "repeats": repeats, "seed": seed, "limit": limit,
                 "filter": list(filters) or None}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if k or mode:
        data["retrieval"] = {"k": list(k) or data.get("retrieval", {}).get("k", [4]),
                             "mode": _csv(mode) or data.get("retrieval", {}).get("mode", ["hybrid"])}
    if retrieval_only:
        data["retrieval_only"] = True
    data["fail_under"] = {**data.get("fail_under", {}), **_pairs(fail_under, "--fail-under")}
    return make_suite(data, where=str(suite_file or "options"))


@eval_group.command("run")
@click.argument("suite_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dataset", "datasets", multiple=True, help="JSONL or CSV dataset (repeatable)")
@click.option("--templates", help="comma-separated template names")
@click.option("--models", help="comma-separated model names")
@click.option("--k", multiple=True, type=click.IntRange(1, 50), help="k to compare (repeatable)")
@click.option("--mode", help="retrieval modes to compare: hybrid,dense")
@click.option("--metrics", help="comma-separated metric names [default: the suite's]")
@click.option("--retrieval-only", is_flag=True, help="score retrieval only (no generation)")
@click.option("--repeats", type=click.IntRange(1, 20), help="runs of each cell")
@click.option("--seed", type=int, help="seed for sampling and the bootstrap")
@click.option("--limit", type=click.IntRange(1), help="only the first N items")
@click.option("--filter", "filters", multiple=True, help="metadata.KEY=VALUE (repeatable)")
@click.option("--fail-under", multiple=True, help="METRIC=VALUE: exit 1 if a cell's mean is lower")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="run folder [default: runs/<time>, or under COURSELAB_RUNS]; an existing one "
                   "is resumed")
@click.option("--no-cache", is_flag=True, help="generate everything again")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="also write promptfoo's output JSON here (promptfoo configs; `promptfoo import`)")
@click.pass_context
def run_command(ctx, suite_file, datasets, templates, models, k, mode, metrics, retrieval_only,
                repeats, seed, limit, filters, fail_under, out, no_cache, output) -> None:
    """Run SUITE_FILE (or the options) into a run folder: results, summary, report, plots.
    A promptfooconfig.yaml (recognised by its keys) runs as promptfoo would run it."""
    from assistant.cli.common import _settings
    from assistant.cli.progress import progress
    from assistant.evaluation.promptfoo import is_promptfoo_config

    if suite_file is not None and is_promptfoo_config(suite_file):
        from assistant.cli.promptfoo import run_config

        others = datasets or templates or models or k or mode or metrics or retrieval_only or \
            seed is not None or filters or fail_under or no_cache
        if others:
            raise InputError("a promptfoo config takes only --out, --output, --repeats and --limit")
        return run_config(ctx, suite_file, out, output, repeats, limit)
    if output:
        raise InputError("--output (promptfoo's JSON) is for promptfoo configs")
    from assistant.evaluation.report import plot, summarize, write_html, write_summary
    from assistant.evaluation.runfolder import check_inputs, claim
    from assistant.evaluation.runner import Runner

    settings = _settings(ctx)
    suite = build_suite(suite_file, datasets, templates, models, k, mode, metrics, retrieval_only,
                        repeats, seed, limit, filters, fail_under, settings.model)
    out = out or settings.runs_dir / time.strftime("%Y%m%d-%H%M%S")
    started = time.perf_counter()
    runner = Runner(suite, settings, out, use_cache=not no_cache)
    runner.check()  # a misspelt template or model: one error, and no run folder
    with claim(out), progress() as update:  # one runner per folder; a kill frees it
        check_inputs(out, settings, suite)  # resume only over the same corpus and templates
        runner.progress = update
        rows = runner.run()
        summary = summarize(rows, suite)
        summary["wall_s"] = round(time.perf_counter() - started, 2)
        summary["generation"] = runner.stats
        write_summary(summary, out / "summary.json")
        plots = plot(summary, out / "plots")
        write_html(summary, rows, plots, out / "report.html")
    _print_summary(summary, out)
    if not summary["passed"]:
        ctx.exit(1)


def _print_summary(summary: dict, out: Path) -> None:
    for cell in summary["cells"]:
        parts = [f"{n} {m['mean']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]"
                 for n, m in cell["metrics"].items() if m["mean"] is not None]
        errors = f", {cell['errors']} errors" if cell["errors"] else ""
        click.echo(f"{cell['cell']} ({cell['rows']} rows{errors})\n    " + "\n    ".join(parts))
        computed = [n for n, a in cell["attribution"].items()
                    if (cell["metrics"].get(n) or {}).get("n")]  # never a metric not computed
        for name, a in [(n, cell["attribution"][n]) for n in computed[:1]]:
            unknown = (f", {a['unknown']} with no reference passage to tell"
                       if a.get("unknown") else "")
            click.echo(f"    failures on {name}: {a['failed']} ({a['not_retrieved']} without the "
                       f"right passage, {a['retrieved']} with it in hand{unknown})")
    for c in summary.get("vs_extractive", []):
        click.echo(f"{c['b']} minus the quote ({c['a']}) on {c['metric']}: {c['diff']:+.3f} "
                   f"[{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}], p={c['p_value']:.3g}")
    significant = [c for c in summary["comparisons"] if c["p_value"] < 0.05]
    shown = [c for c in significant if c["metric"] in list(summary["cells"][0]["metrics"])[:2]]
    for c in shown:
        click.echo(c["verdict"])
    if len(significant) > len(shown):
        click.echo(f"... {len(significant) - len(shown)} more significant differences in report.html")
    gen = summary.get("generation", {})
    click.echo(f"{gen.get('generated', 0)} generated, {gen.get('cached', 0)} from the cache, "
               f"{summary.get('wall_s', 0)} s")
    for g in summary["gates"]:
        if not g["passed"]:
            click.echo(f"FAILED: {g['cell']}: {g['metric']} {g['mean']} vs {g['threshold']}", err=True)
    click.echo(f"run folder: {out} (report.html, summary.json, results.jsonl, plots/)")


@eval_group.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("run_b", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--metric", "metrics", multiple=True, help="metrics to compare [default: all]")
@click.option("--seed", default=0, show_default=True, help="bootstrap seed")
def compare_command(run_a, run_b, metrics, seed) -> None:
    """Items that regressed or improved from RUN_A to RUN_B, with paired statistics."""
    from assistant.evaluation.compare_runs import compare_runs

    for line in compare_runs(run_a, run_b, list(metrics), seed):
        click.echo(line)


@eval_group.command("references")
@click.argument("dataset", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--list", "list_only", is_flag=True, help="only list the rows that need one")
@click.pass_context
def references_command(ctx, dataset, list_only) -> None:
    """Write the right answers for down-voted rows, so a bad answer becomes a test case.

    DATASET defaults to the app's feedback file. For each row that needs a reference, type
    the right answer; an empty line skips the row, '-' says the course does not answer it.
    Each answer is saved at once (a rewrite that keeps votes arriving meanwhile).
    """
    from assistant.cli.common import _settings
    from assistant.feedback import check_reference, pending_references, write_references

    path = dataset or _settings(ctx).feedback_path
    if not path.is_file():
        raise InputError(f"no feedback file at {path} (vote on answers in the app first)")
    rows = pending_references(path)
    click.echo(f"{len(rows)} row(s) in {path} need a reference")
    written = 0
    for n, row in enumerate([] if list_only else rows, 1):
        _show_row(n, len(rows), row)
        text = click.prompt("right answer (empty: skip, '-': the course does not answer it)",
                            default="", show_default=False)
        if not text.strip():
            continue
        write_references(path, {row["id"]: None if text.strip() == "-" else check_reference(text)})
        written += 1
    if list_only:
        for row in rows:
            click.echo(f"  {row['id']}  {row['metadata'].get('question') or row['user_input']}")
    else:
        click.echo(f"{written} reference(s) written to {path}")


def _show_row(n: int, total: int, row: dict) -> None:
    meta = row["metadata"]
    click.echo(f"\n[{n}/{total}] {row['id']}\nquestion: {meta.get('question') or row['user_input']}")
    if meta.get("question") and meta["question"] != row["user_input"]:
        click.echo(f"searched as: {row['user_input']}")
    click.echo(f"down-voted answer: {meta.get('answer', '')}")
    for passage in (meta.get("contexts_seen") or [])[:4]:
        click.echo("  passage: " + " ".join(passage.split())[:200])
