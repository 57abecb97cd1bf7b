"""Two runs side by side: per cell and metric, the paired statistics and the items that
regressed (passed in A, failed in B) or improved."""

from __future__ import annotations

from pathlib import Path

from assistant.errors import InputError
from assistant.evaluation.metrics import METRICS
from assistant.evaluation.report import cell_of, per_item
from assistant.evaluation.runfolder import read_results
from assistant.evaluation.runner import RESULTS
from assistant.evaluation.stats import compare


def load_run(folder: Path) -> list[dict]:
    rows = read_results(Path(folder) / RESULTS)
    if not rows:
        raise InputError(f"{folder}: no results.jsonl rows (is it a run folder?)")
    return rows


def passes(rows: list[dict], metric: str) -> dict[tuple[str, str], bool]:
    return {(cell_of(r), r["item_id"]): r["metrics"][metric]["pass"] for r in rows
            if not r.get("error") and (r["metrics"].get(metric) or {}).get("pass") is not None}


def compare_runs(a_dir: Path, b_dir: Path, metrics: list[str], seed: int = 0) -> list[str]:
    """Report lines: a verdict per cell and metric, then the regressed and improved items."""
    a, b = load_run(a_dir), load_run(b_dir)
    shared_cells = sorted({cell_of(r) for r in a} & {cell_of(r) for r in b})
    if not shared_cells:
        raise InputError("the two runs share no cell (template, model, k, mode)")
    names = metrics or [n for n in METRICS if any(n in r["metrics"] for r in a)]
    lines = []
    for name in names:
        if name not in METRICS:
            raise InputError(f"unknown metric {name!r}")
        sa, sb = per_item(a, name), per_item(b, name)
        pa, pb = passes(a, name), passes(b, name)
        metric = METRICS[name]
        for cell in shared_cells:
            result = compare(name, f"A {a_dir.name}", f"B {b_dir.name}", sa.get(cell, {}),
                             sb.get(cell, {}), metric.binary, metric.higher_is_better, seed)
            if result is None:
                continue
            lines.append(f"[{cell}] {result.verdict}")
            keys = [k for k in pa if k[0] == cell and k in pb]
            worse = sorted(k[1] for k in keys if pa[k] and not pb[k])
            better = sorted(k[1] for k in keys if not pa[k] and pb[k])
            if worse:
                lines.append(f"    regressed on {name} ({len(worse)}): {', '.join(worse)}")
            if better:
                lines.append(f"    improved on {name} ({len(better)}): {', '.join(better)}")
    return lines
