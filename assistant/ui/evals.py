"""The Evals tab: browse the run folders of `courselab eval run`.

For a chosen run: the means with 95% CIs, the plots with error bars, the failure
attribution, the significant paired comparisons, and each item's drill-down
(question, retrieved sections, prompt, answer, metrics). Read-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from assistant.evaluation.report import cell_of
from assistant.evaluation.runfolder import read_results
from assistant.evaluation.runner import RESULTS
from assistant.service import Service
from assistant.ui.html import escape


def list_runs(folder: Path) -> list[str]:
    """Run folders (those with a summary.json), newest first."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if (p / "summary.json").is_file()]
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def summary_rows(summary: dict) -> tuple[list[str], list[list]]:
    """The means table, one row per metric and one column per cell (cells are few, metrics
    many: a laptop shows it without scrolling sideways)."""
    cells = summary["cells"]
    names = list(cells[0]["metrics"]) if cells else []
    rows = [["items", *[c["rows"] for c in cells]], ["errors", *[c["errors"] for c in cells]]]
    for n in names:
        rows.append([n, *["–" if c["metrics"][n]["mean"] is None else
                          f"{c['metrics'][n]['mean']:.3f} [{c['metrics'][n]['ci'][0]:.3f}, "
                          f"{c['metrics'][n]['ci'][1]:.3f}]" for c in cells]])
    return ["metric", *[c["cell"] for c in cells]], rows


def significant(summary: dict) -> str:
    """The differences that hold (p < 0.05 and an interval of some width), as Markdown; a
    zero-width interval comes from too few varying items and is no evidence."""
    found, degenerate = [], 0
    for c in summary["comparisons"]:
        if c["p_value"] >= 0.05:
            continue
        if c["ci"][0] == c["ci"][1]:
            degenerate += 1
            continue
        found.append(c["verdict"])
    note = (f"\n\n<sub>{degenerate} more with a zero-width interval left out (too few items "
            "differ to tell).</sub>") if degenerate else ""
    if not found:
        return "No significant difference between cells." + note
    return "**Significant differences**\n\n" + "\n".join(f"- {escape(v)}" for v in found) + note


def attribution_rows(summary: dict) -> list[list]:
    return [[c["cell"], name, a["failed"], a["not_retrieved"], a["retrieved"]]
            for c in summary["cells"] for name, a in c["attribution"].items()]


def drill_down(rows: list[dict], item: str) -> str:
    """Markdown for one item across every cell (all text escaped)."""
    mine = [r for r in rows if r["item_id"] == item]
    if not mine:
        return ""
    out = [f"**{escape(item)}**: {escape(mine[0]['question'])}\n\n"
           f"Reference: {escape(mine[0]['reference'] or '(none: the course does not answer it)')}"]
    for r in mine:
        metrics = "\n".join(
            f"| {escape(n)} | {'–' if m.get('score') is None else format(m['score'], '.3f')} | "
            f"{'✓ pass' if m.get('pass') else '✗ fail' if m.get('pass') is False else ''} |"
            for n, m in r["metrics"].items())
        sections = "; ".join(dict.fromkeys(h["section"] for h in r["hits"]))
        error = f"\n\n⚠️ error: {escape(r['error'])}" if r.get("error") else ""
        prompt = (f"\n\n<details><summary>prompt</summary>\n\n<pre>{escape(r['prompt'])}</pre>\n\n"
                  "</details>") if r.get("prompt") else ""
        out.append(f"### {escape(cell_of(r))}{error}\n\nAnswer: {escape(r['answer'])}\n\n"
                   f"Retrieved: {escape(sections)}{prompt}\n\n| metric | score | |\n|---|---|---|\n"
                   f"{metrics}")
    return "\n\n".join(out)


def item_choices(rows: list[dict]) -> list[tuple[str, str]]:
    """(id: question, id) for the item selector: a question is found by its words."""
    seen: dict[str, str] = {}
    for r in rows:
        seen.setdefault(r["item_id"], r["question"])
    return [(f"{i}: {q[:70]}{'…' if len(q) > 70 else ''}", i) for i, q in seen.items()]


def evals_tab(service: Service):
    """The Evals tab; returns its `wire(demo)`, which shows the newest run when a page loads."""
    folder = Path(service.settings.runs_dir)
    gr.Markdown(f"Runs of `courselab eval run` in `{escape(folder)}`.")
    with gr.Row():
        run = gr.Dropdown(list_runs(folder), label="Run", scale=4, elem_id="evals-run")
        refresh = gr.Button("Refresh", scale=1)
    table = gr.Dataframe(label="Means with 95% bootstrap CIs", interactive=False, wrap=False,
                         elem_id="evals-table")
    gr.Markdown("#### Metrics (error bars: 95% CI)")
    metrics_plot = gr.Image(show_label=False, type="filepath", elem_id="evals-metrics",
                            buttons=["fullscreen"])
    gr.Markdown("#### Failure attribution")
    attribution_plot = gr.Image(show_label=False, type="filepath", elem_id="evals-attribution",
                                buttons=["fullscreen"])
    attribution = gr.Dataframe(headers=["cell", "metric", "failed", "right passage not retrieved",
                                        "failed with it in hand"], interactive=False,
                               label="Failure attribution")
    verdicts = gr.Markdown(elem_id="evals-verdicts")
    item = gr.Dropdown([], label="Item", elem_id="evals-item")
    detail = gr.Markdown(elem_id="evals-detail")

    def show(name):
        path = folder / (name or "")
        if not name or not (path / "summary.json").is_file():
            return gr.skip(), None, None, [], "", gr.Dropdown(choices=[])
        summary = json.loads((path / "summary.json").read_text())
        headers, rows = summary_rows(summary)
        text = significant(summary)
        plots = [path / "plots" / f for f in ("metrics.png", "attribution.png")]
        items = item_choices(read_results(path / RESULTS))
        return (gr.Dataframe(value=rows, headers=headers), *[str(p) if p.exists() else None for p in plots],
                attribution_rows(summary), text, gr.Dropdown(choices=items, value=None))

    def detail_of(name, item_id):
        if not name or not item_id:
            return ""
        return drill_down(read_results(folder / name / RESULTS), item_id)

    outputs = [table, metrics_plot, attribution_plot, attribution, verdicts, item]
    # subtle: a dropdown shows its first run as chosen, and choosing it again is no change
    gr.on([run.change, run.select], show, run, outputs, api_visibility="private")
    refresh.click(lambda: gr.Dropdown(choices=list_runs(folder)), None, run, api_visibility="private")
    item.change(detail_of, [run, item], detail, api_visibility="private")

    def newest():  # the runs on disk now, the newest chosen and shown (not only named)
        runs = list_runs(folder)
        return (gr.Dropdown(choices=runs, value=runs[0] if runs else None),
                *show(runs[0] if runs else None))

    def wire(demo: gr.Blocks) -> None:
        demo.load(newest, None, [run, *outputs], api_visibility="private")

    return wire
