"""`courselab eval run promptfooconfig.yaml`: a promptfoo config run by courselab."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


def run_config(ctx: click.Context, config: Path, out: Path | None, output: Path | None,
               repeats: int | None, limit: int | None) -> None:
    """Run the config into a run folder; exit 1 when a test fails or errs (as promptfoo does)."""
    from assistant.cli.common import _settings
    from assistant.cli.progress import progress as _progress
    from assistant.evaluation.promptfoo import load_promptfoo
    from assistant.evaluation.promptfoo_run import (
        run_promptfoo,
        summarize_promptfoo,
        write_atomic,
        write_output,
    )

    settings = _settings(ctx)
    suite = load_promptfoo(config)
    if repeats:
        suite.repeat = repeats
    if limit:
        suite.tests = suite.tests[:limit]
    out = out or settings.runs_dir / time.strftime("%Y%m%d-%H%M%S")
    started = time.perf_counter()
    with _progress() as update:
        rows = run_promptfoo(suite, settings, out, progress=update)
    summary = summarize_promptfoo(suite, rows)
    summary["wall_s"] = round(time.perf_counter() - started, 2)


    write_atomic(Path(out) / "summary.json", json.dumps(summary, indent=2))
    for cell in summary["cells"]:
        named = ", ".join(f"{m} {v:.2f}" for m, v in cell["named_scores"].items())
        click.echo(f"{cell['prompt']} · {cell['provider']}: {cell['successes']} passed, "
                   f"{cell['failures']} failed, {cell['errors']} errors" + (f" ({named})" if named else ""))
    for r in rows:
        if not r["pass"]:
            reason = r.get("error") or next(a["reason"] for a in r["assertions"] if a["pass"] is False)
            click.echo(f"  FAIL {r['item_id']} {r['description'] or ''} [{r['provider_label']}]: {reason}")
    if output:
        write_output(suite, rows, output)
        click.echo(f"promptfoo output: {output} (promptfoo import {output})")
    click.echo(f"{summary['successes']} passed, {summary['failures']} failed, {summary['errors']} "
               f"errors, {summary['wall_s']} s; run folder: {out}")
    if not summary["passed"]:
        ctx.exit(1)
