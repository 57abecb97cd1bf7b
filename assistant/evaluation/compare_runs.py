"""Two runs side by side: per metric, the items whose pass/fail changed (regressed first,
with both answers), then the paired statistics per cell and metric.

Cells pair by name (template, model, k, mode); two runs of one cell each pair with each
other even when their names differ (the usual "same questions, new template" check).
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import InputError
from assistant.evaluation.metrics import METRICS
from assistant.evaluation.report import cell_of, per_item
from assistant.evaluation.runfolder import read_results
from assistant.evaluation.runner import RESULTS
from assistant.evaluation.stats import compare

ANSWER_CHARS = 60  # each answer's width in the side-by-side lines


def load_run(folder: Path) -> list[dict]:
    rows = read_results(Path(folder) / RESULTS)
    if not rows:
        raise InputError(f"{folder}: no results.jsonl rows (is it a run folder?)")
    return rows


def passes(rows: list[dict], metric: str) -> dict[tuple[str, str], bool]:
    """(cell, item) -> passed; with repeats, passed in at least half of them."""
    votes: dict[tuple[str, str], list[bool]] = {}
    for r in rows:
        verdict = (r["metrics"].get(metric) or {}).get("pass")
        if not r.get("error") and verdict is not None:
            votes.setdefault((cell_of(r), r["item_id"]), []).append(bool(verdict))
    return {key: 2 * sum(v) >= len(v) for key, v in votes.items()}


def cell_pairs(a: list[dict], b: list[dict]) -> list[tuple[str, str]]:
    """(cell in A, cell in B) to compare: the shared cells, or the only cell of each run."""
    cells_a = list(dict.fromkeys(cell_of(r) for r in a))
    cells_b = list(dict.fromkeys(cell_of(r) for r in b))
    shared = [c for c in cells_a if c in cells_b]
    if shared:
        return [(c, c) for c in shared]
    if len(cells_a) == 1 and len(cells_b) == 1:
        return [(cells_a[0], cells_b[0])]
    raise InputError("the two runs share no cell (template, model, k, mode)")


def compare_runs(a_dir: Path, b_dir: Path, metrics: list[str], seed: int = 0) -> list[str]:
    """Report lines: the items that regressed or improved per metric, then the paired tests."""
    a, b = load_run(a_dir), load_run(b_dir)
    pairs = cell_pairs(a, b)
    names = metrics or [n for n in METRICS if any(n in r["metrics"] for r in a)]
    for name in names:
        if name not in METRICS:
            raise InputError(f"unknown metric {name!r}")
    lines = [f"Items whose pass/fail changed from A ({a_dir}) to B ({b_dir}):"]
    for name in names:
        lines += _changed_items(a, b, pairs, name)
    lines += ["", "Paired tests:"]
    for name in names:
        lines += _paired_tests(a, b, pairs, name, a_dir.name, b_dir.name, seed)
    return lines


def _label(cell_a: str, cell_b: str) -> str:
    return cell_a if cell_a == cell_b else f"{cell_a} -> {cell_b}"


def _changed_items(a, b, pairs, name: str) -> list[str]:
    pa, pb = passes(a, name), passes(b, name)
    answers_a, answers_b = _answers(a), _answers(b)
    lines = []
    for cell_a, cell_b in pairs:
        items = sorted(i for c, i in pa if c == cell_a and (cell_b, i) in pb)
        worse = [i for i in items if pa[cell_a, i] and not pb[cell_b, i]]
        better = [i for i in items if not pa[cell_a, i] and pb[cell_b, i]]
        if not worse and not better:
            lines.append(f"no item changed on {name} [{_label(cell_a, cell_b)}] "
                         f"({len(items)} items in both)")
        for kind, chosen, verdicts in (("regressed", worse, ("pass", "fail")),
                                       ("improved", better, ("fail", "pass"))):
            if not chosen:
                continue
            lines.append(f"{kind} on {name} [{_label(cell_a, cell_b)}] ({len(chosen)}):")
            for item in chosen:
                (question, ans_a), (_, ans_b) = answers_a[cell_a, item], answers_b[cell_b, item]
                lines.append(f"  {item}  {_short(question, 2 * ANSWER_CHARS)}")
                lines.append(f"      A {verdicts[0]}: {_short(ans_a, ANSWER_CHARS):<{ANSWER_CHARS}}"
                             f" | B {verdicts[1]}: {_short(ans_b, ANSWER_CHARS)}")
    return lines


def _paired_tests(a, b, pairs, name: str, a_name: str, b_name: str, seed: int) -> list[str]:
    sa, sb = per_item(a, name), per_item(b, name)
    metric = METRICS[name]
    lines = []
    for cell_a, cell_b in pairs:
        result = compare(name, f"A {a_name}", f"B {b_name}", sa.get(cell_a, {}), sb.get(cell_b, {}),
                         metric.binary, metric.higher_is_better, seed)
        if result is not None:
            lines.append(f"[{_label(cell_a, cell_b)}] {result.verdict}")
    return lines


def _answers(rows: list[dict]) -> dict[tuple[str, str], tuple[str, str]]:
    """(cell, item) -> (question, answer) of the first repeat; an abstention or error says so."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for r in rows:
        key = (cell_of(r), r["item_id"])
        if key in out:
            continue
        if r.get("error"):
            text = f"(error: {r['error']})"
        elif r.get("abstained"):
            text = f"(abstained) {r.get('answer') or ''}"
        else:
            text = r.get("answer") or "(no answer)"
        out[key] = (r.get("question") or "", text)
    return out


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."
