"""Summaries and reports of a run: summary.json, plots (PNG) and a self-contained report.html.

A cell is a configuration without its repeat: repeats are averaged per item first.
Errors are counted apart and kept out of every score.
"""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from assistant.evaluation.metrics import METRICS
from assistant.evaluation.runfolder import write_atomic
from assistant.evaluation.stats import compare, mean_ci
from assistant.evaluation.suite import Suite


def cell_of(row: dict) -> str:
    """A cell's label: 'default · smollm2-135m-instruct · k=4 hybrid' ('retrieval · k=4 dense')."""
    if row["template"] == "-":
        return f"retrieval · k={row['k']} {row['mode']}"
    return f"{row['template']} · {row['model']} · k={row['k']} {row['mode']}"


def per_item(rows: list[dict], metric: str) -> dict[str, dict[str, float]]:
    """cell -> item -> score (mean over repeats), errors and non-applicable items left out."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        m = r["metrics"].get(metric)
        if r.get("error") or not m or m.get("score") is None:
            continue
        acc[cell_of(r)][r["item_id"]].append(m["score"])
    return {c: {i: sum(v) / len(v) for i, v in items.items()} for c, items in acc.items()}


def summarize(rows: list[dict], suite: Suite) -> dict:
    """Means with 95% CIs, pass rates, failure attribution, paired comparisons and gates."""
    cells = list(dict.fromkeys(cell_of(r) for r in rows))
    metrics = [m.name for m in suite.metrics if any(m.name in r["metrics"] for r in rows)]
    summary = {"description": suite.description, "items": len({r["item_id"] for r in rows}),
               "rows": len(rows), "cells": []}
    for cell in cells:
        mine = [r for r in rows if cell_of(r) == cell]
        entry = {"cell": cell, **{k: mine[0][k] for k in ("template", "model", "k", "mode")},
                 "rows": len(mine), "errors": sum(bool(r.get("error")) for r in mine),
                 "metrics": {}, "attribution": {}}
        for name in metrics:
            entry["metrics"][name] = _metric_summary(mine, name, suite.seed)
            if not METRICS[name].retrieval and entry["metrics"][name]["n"]:  # computed only
                entry["attribution"][name] = _attribution(mine, name)
        summary["cells"].append(entry)
    summary["comparisons"] = _comparisons(rows, cells, metrics, suite)
    summary["vs_extractive"] = vs_extractive(summary["comparisons"])
    summary["gates"] = gates(summary, suite.fail_under)
    summary["passed"] = all(g["passed"] for g in summary["gates"])
    return summary


def _metric_summary(rows: list[dict], name: str, seed: int) -> dict:
    scored = [r["metrics"][name] for r in rows if not r.get("error") and name in r["metrics"]]
    values = [m["score"] for m in scored if m.get("score") is not None]
    passes = [float(m["pass"]) for m in scored if m.get("pass") is not None]
    mean, lo, hi = mean_ci(values, seed)
    rate, plo, phi = mean_ci(passes, seed)
    return {"mean": _num(mean), "ci": [_num(lo), _num(hi)], "n": len(values),
            "pass_rate": _num(rate), "pass_ci": [_num(plo), _num(phi)],
            "errors": sum(bool(m.get("error")) for m in scored)}


def _attribution(rows: list[dict], name: str) -> dict:
    """Failed items split by whether the model had the right passage in hand."""
    failed = [r for r in rows if not r.get("error") and (r["metrics"].get(name) or {}).get("pass") is False]
    return {"failed": len(failed),
            "not_retrieved": sum(r.get("relevant_seen") is False for r in failed),
            "retrieved": sum(r.get("relevant_seen") is True for r in failed),
            "unknown": sum(r.get("relevant_seen") is None for r in failed)}


def _comparisons(rows, cells, metrics, suite: Suite) -> list[dict]:
    out = []
    for name in metrics:
        scores = per_item(rows, name)
        metric = METRICS[name]
        binary = metric.binary and suite.repeats == 1
        for a, b in combinations(cells, 2):
            result = compare(name, a, b, scores.get(a, {}), scores.get(b, {}), binary,
                             metric.higher_is_better, suite.seed)
            if result:
                out.append(result.to_dict())
    return out


VALUE_METRICS = ("lead_key_facts", "key_facts")  # what a model must add over the quote


def vs_extractive(comparisons: list[dict]) -> list[dict]:
    """Each model's difference to the extractive baseline (the quote alone), model minus quote."""
    out = []
    for c in comparisons:
        if c["metric"] not in VALUE_METRICS:
            continue
        if " · extractive · " in c["a"] and " · extractive · " not in c["b"]:
            out.append(c)
        elif " · extractive · " in c["b"] and " · extractive · " not in c["a"]:
            out.append({**c, "a": c["b"], "b": c["a"], "mean_a": c["mean_b"], "mean_b": c["mean_a"],
                        "diff": -c["diff"], "ci": [-c["ci"][1], -c["ci"][0]]})
    return out


def gates(summary: dict, fail_under: dict[str, float]) -> list[dict]:
    """Each cell's mean against each threshold (for lower-is-better metrics: a ceiling)."""
    out = []
    for name, limit in fail_under.items():
        for cell in summary["cells"]:
            m = cell["metrics"].get(name)
            mean = m["mean"] if m else None
            higher = METRICS[name].higher_is_better
            ok = mean is not None and (mean >= limit if higher else mean <= limit)
            out.append({"metric": name, "threshold": limit, "cell": cell["cell"], "mean": mean,
                        "passed": ok})
    return out


def _num(x: float) -> float | None:
    return None if x != x else round(x, 4)  # NaN (nothing scored) becomes null


# --- plots and HTML --------------------------------------------------------------------
def plot(summary: dict, folder: Path) -> list[Path]:
    """metrics.png (means with 95% CI error bars) and attribution.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    cells = summary["cells"]
    names = list(cells[0]["metrics"]) if cells else []
    paths = []
    if names:
        # two columns and large type: the Evals tab shows this about 1,000 px wide
        cols = min(2, len(names))
        rows = -(-len(names) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.6 * rows), squeeze=False)
        labels = _cell_labels(cells)
        for ax, name in zip(axes.flat, names):
            stats = [c["metrics"][name] for c in cells]
            means = [m["mean"] or 0 for m in stats]
            lows = [max(0, mean - (m["ci"][0] or 0)) for m, mean in zip(stats, means)]
            highs = [max(0, (m["ci"][1] or 0) - mean) for m, mean in zip(stats, means)]
            ax.bar(range(len(cells)), means, yerr=[lows, highs], capsize=4, color="#4c78a8")
            ax.set_title(f"{name} (mean, 95% CI)", fontsize=13)
            ax.tick_params(axis="y", labelsize=11)
            ax.set_xticks(range(len(cells)), labels, rotation=20, ha="right", fontsize=11)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.tight_layout()
        paths.append(_save(fig, folder / "metrics.png", plt))
    attributed = [c for c in cells if c["attribution"]]
    if attributed:
        name = next(iter(attributed[0]["attribution"]))
        fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(attributed)), 3.5))
        lost = [c["attribution"][name]["not_retrieved"] for c in attributed]
        held = [c["attribution"][name]["retrieved"] for c in attributed]
        ax.bar(range(len(attributed)), lost, label="right passage not retrieved", color="#e45756")
        ax.bar(range(len(attributed)), held, bottom=lost, label="right passage in hand",
               color="#f58518")
        ax.set_title(f"failures on {name}")
        # the model in each label when the run compares models; headroom keeps the legend off the bars
        ax.set_xticks(range(len(attributed)), _cell_labels(attributed), rotation=30, ha="right",
                      fontsize=8)
        ax.set_ylim(0, 1.4 * max([a + b for a, b in zip(lost, held)] + [1]))
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        paths.append(_save(fig, folder / "attribution.png", plt))
    return paths


def _cell_labels(cells: list[dict]) -> list[str]:
    """Short x labels: the template, with the model when the run compares models."""
    models = {c["model"] for c in cells}
    return [c["cell"] if c["template"] == "-" else
            f"{c['template']} · {c['model']}" if len(models) > 1 else c["template"] for c in cells]


def _save(fig, path: Path, plt) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_html(summary: dict, rows: list[dict], plots: list[Path], path: Path) -> Path:
    """One HTML file with everything inline: tables, plots, comparisons and every item."""
    e = lambda x: html.escape(str(x))  # noqa: E731
    parts = [f"<h1>{e(summary['description'] or 'Evaluation')}</h1>",
             f"<p>{summary['items']} items, {summary['rows']} results, "
             f"{'all gates passed' if summary['passed'] else 'a gate FAILED'}.</p>",
             _gates(summary, e), _table(summary, e)]
    for p in plots:
        data = base64.b64encode(p.read_bytes()).decode()
        parts.append(f'<img alt="{e(p.stem)}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Failure attribution</h2>" + _attribution_table(summary, e))
    if summary.get("vs_extractive"):
        parts.append("<h2>What each model adds to the course's own quote</h2><ul>" + "".join(
            f"<li>{e(c['b'])} minus {e(c['a'])} on {e(c['metric'])}: {c['diff']:+.3f} "
            f"[{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}], p={c['p_value']:.3g}</li>"
            for c in summary["vs_extractive"]) + "</ul>")
    parts.append("<h2>Paired comparisons</h2><ul>" + "".join(
        f"<li>{e(c['verdict'])} <small>({e(c['test'])}, n={c['n']}, d_z={c['effect_size']})</small></li>"
        for c in summary["comparisons"]) + "</ul>")
    parts.append("<h2>Items</h2>" + _items(rows, e))
    page = (f"<!doctype html><meta charset='utf-8'><title>{e(summary['description'])}</title>"
            f"<style>{STYLE}</style><body>{''.join(parts)}</body>")
    return write_atomic(path, page)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:.9em}
th{background:#f4f4f4}img{max-width:100%}pre{white-space:pre-wrap;background:#f8f8f8;padding:6px}
details{margin:.3em 0}.fail{color:#b00}.pass{color:#070}"""


def _table(summary: dict, e) -> str:
    cells = summary["cells"]
    if not cells:
        return "<p>No results.</p>"
    names = list(cells[0]["metrics"])
    head = "<tr><th>cell</th><th>rows</th><th>errors</th>" + "".join(
        f"<th>{e(n)}</th>" for n in names) + "</tr>"
    body = ""
    for c in cells:
        tds = "".join(
            f"<td>{_fmt(c['metrics'][n]['mean'])} [{_fmt(c['metrics'][n]['ci'][0])}, "
            f"{_fmt(c['metrics'][n]['ci'][1])}]</td>" for n in names)
        body += f"<tr><td>{e(c['cell'])}</td><td>{c['rows']}</td><td>{c['errors']}</td>{tds}</tr>"
    return f"<h2>Means with 95% bootstrap CIs</h2><table>{head}{body}</table>"


def _gates(summary: dict, e) -> str:
    if not summary["gates"]:
        return ""
    items = "".join(
        f"<li class='{'pass' if g['passed'] else 'fail'}'>{e(g['cell'])}: {e(g['metric'])} "
        f"{_fmt(g['mean'])} (threshold {g['threshold']})</li>" for g in summary["gates"])
    return f"<h2>Gates</h2><ul>{items}</ul>"


def _attribution_table(summary: dict, e) -> str:
    rows = ""
    for c in summary["cells"]:
        for name, a in c["attribution"].items():
            rows += (f"<tr><td>{e(c['cell'])}</td><td>{e(name)}</td><td>{a['failed']}</td>"
                     f"<td>{a['not_retrieved']}</td><td>{a['retrieved']}</td></tr>")
    return ("<table><tr><th>cell</th><th>metric</th><th>failed</th><th>right passage not "
            "retrieved</th><th>failed with it in hand</th></tr>" + rows + "</table>")


def _items(rows: list[dict], e) -> str:
    by_item: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_item[r["item_id"]].append(r)
    out = []
    for item, results in by_item.items():
        inner = ""
        for r in results:
            metrics = ", ".join(
                f"<span class='{'pass' if m.get('pass') else 'fail'}'>{e(n)} {_fmt(m.get('score'))}</span>"
                for n, m in r["metrics"].items())
            sections = "; ".join(dict.fromkeys(h["section"] for h in r["hits"]))
            error = f"<p class='fail'>error: {e(r['error'])}</p>" if r.get("error") else ""
            prompt = f"<details><summary>prompt</summary><pre>{e(r['prompt'])}</pre></details>" \
                if r.get("prompt") else ""
            inner += (f"<h4>{e(cell_of(r))}</h4>{error}<p><b>answer:</b> {e(r['answer'])}</p>"
                      f"<p><b>retrieved:</b> {e(sections)}</p>{prompt}<p>{metrics}</p>")
        out.append(f"<details><summary>{e(item)}: {e(results[0]['question'])}</summary>"
                   f"<p><b>reference:</b> {e(results[0]['reference'])}</p>{inner}</details>")
    return "".join(out)


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def write_summary(summary: dict, path: Path) -> Path:
    return write_atomic(path, json.dumps(summary, indent=2))
