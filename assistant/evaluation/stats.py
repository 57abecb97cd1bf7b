"""Statistics for evaluation results: bootstrap confidence intervals and paired tests.

Every mean comes with a 95% bootstrap interval. Two configurations are compared on
the items both scored: McNemar's exact test for pass/fail metrics, a paired
permutation test for continuous ones, each with the mean difference, its 95%
bootstrap interval and a verdict in plain words. Seeded: the same seed gives the
same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.05
RESAMPLES = 2000


def mean_ci(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval: mean_ci([1, 1, 1]) -> (1.0, 1.0, 1.0)."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if len(data) < 2 or np.all(data == data[0]):
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), (RESAMPLES, len(data)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return mean, float(lo), float(hi)


@dataclass
class Comparison:
    """B against A on one metric, over the items both scored."""

    metric: str
    a: str
    b: str
    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean of B - A: the effect in the metric's own units
    ci: tuple[float, float]
    effect_size: float  # Cohen's d_z (mean difference / sd of differences); 0 when they never differ
    p_value: float
    test: str
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar test on paired pass/fail outcomes."""
    from scipy.stats import binomtest

    b_only, a_only = int(np.sum(b & ~a)), int(np.sum(a & ~b))
    if b_only + a_only == 0:
        return 1.0
    return float(binomtest(b_only, b_only + a_only, 0.5).pvalue)


def permutation_p(diffs: np.ndarray, seed: int = 0) -> float:
    """Two-sided paired permutation (sign-flip) test of a zero mean difference."""
    from scipy.stats import permutation_test

    if np.all(diffs == 0):
        return 1.0
    result = permutation_test((diffs,), np.mean, permutation_type="samples", n_resamples=RESAMPLES,
                              alternative="two-sided", random_state=seed)
    return float(result.pvalue)


def compare(metric: str, a_name: str, b_name: str, a: dict[str, float], b: dict[str, float],
            binary: bool, higher_is_better: bool = True, seed: int = 0) -> Comparison | None:
    """Paired comparison of two configurations' per-item scores (item id -> score)."""
    items = sorted(set(a) & set(b))
    if len(items) < 2:
        return None
    xa = np.array([a[i] for i in items], dtype=float)
    xb = np.array([b[i] for i in items], dtype=float)
    diffs = xb - xa
    if binary:
        p, test = mcnemar_p(xa.astype(bool), xb.astype(bool)), "McNemar exact"
    else:
        p, test = permutation_p(diffs, seed), "paired permutation"
    mean, lo, hi = mean_ci(list(diffs), seed)
    sd = float(diffs.std(ddof=1))
    d_z = mean / sd if sd > 0 else 0.0
    verdict = _verdict(metric, a_name, b_name, mean, lo, hi, p, higher_is_better)
    return Comparison(metric, a_name, b_name, len(items), float(xa.mean()), float(xb.mean()),
                      mean, (lo, hi), round(d_z, 3), p, test, verdict)


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _verdict(metric, a, b, diff, lo, hi, p, higher_is_better) -> str:
    """'B beats A on token_f1: +0.120, 95% CI [0.050, 0.190], p=0.001' (winner minus loser)."""
    if p >= ALPHA:
        return (f"no detectable difference between {a} and {b} on {metric} "
                f"({b} - {a}: {diff:+.3f}, 95% CI [{lo:.3f}, {hi:.3f}], {_p(p)})")
    b_wins = (diff > 0) == higher_is_better
    better, worse = (b, a) if b_wins else (a, b)
    d, low, high = (diff, lo, hi) if b_wins else (-diff, -hi, -lo)
    return f"{better} beats {worse} on {metric}: {d:+.3f}, 95% CI [{low:.3f}, {high:.3f}], {_p(p)}"
