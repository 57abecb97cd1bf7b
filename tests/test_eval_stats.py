"""The statistics on known cases: identical runs differ by nothing, a planted difference is found."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.evaluation.stats import compare, mcnemar_p, mean_ci


def test_mean_ci_is_seeded_and_brackets_the_mean():
    data = list(np.random.default_rng(1).random(50))
    mean, lo, hi = mean_ci(data, seed=3)
    assert lo < mean < hi and (mean, lo, hi) == mean_ci(data, seed=3)
    assert mean_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_identical_runs_show_no_difference():
    scores = {f"q{i}": float(i % 2) for i in range(40)}
    for binary in (True, False):
        result = compare("key_facts", "A", "B", scores, dict(scores), binary)
        assert result.p_value == 1.0 and result.diff == 0.0 and result.ci == (0.0, 0.0)
        assert result.verdict.startswith("no detectable difference between A and B on key_facts")


def test_a_planted_pass_fail_difference_is_detected_by_mcnemar():
    rng = np.random.default_rng(0)
    a = {f"q{i}": float(rng.random() < 0.3) for i in range(100)}
    b = dict(a)
    flipped = [i for i, v in a.items() if v == 0.0][:25]
    b.update({i: 1.0 for i in flipped})  # B passes 25 more items, fails none that A passed
    result = compare("key_facts", "A", "B", a, b, binary=True)
    assert result.test == "McNemar exact" and result.p_value < 0.001
    assert result.diff == pytest.approx(0.25) and result.ci[0] > 0
    assert result.verdict.startswith("B beats A on key_facts: +0.250, 95% CI [")


def test_a_planted_continuous_difference_is_detected_and_sized():
    rng = np.random.default_rng(0)
    a = {f"q{i}": float(rng.random()) for i in range(60)}
    b = {i: v + 0.12 + float(rng.normal(0, 0.05)) for i, v in a.items()}
    result = compare("token_f1", "A", "B", a, b, binary=False)
    assert result.test == "paired permutation" and result.p_value < 0.01
    assert result.ci[0] < 0.12 < result.ci[1]
    assert result.effect_size > 1  # a shift of 0.12 against noise of 0.05: a large effect


def test_lower_is_better_and_a_winner_a():
    a = {f"q{i}": 1.0 + i / 100 for i in range(30)}
    b = {i: v + 0.5 for i, v in a.items()}
    result = compare("latency", "A", "B", a, b, binary=False, higher_is_better=False)
    assert result.verdict.startswith("A beats B on latency: -0.500")


def test_mcnemar_counts_only_discordant_pairs():
    a = np.array([1, 1, 0, 0, 1], dtype=bool)
    assert mcnemar_p(a, a.copy()) == 1.0
    b = np.array([1, 1, 1, 1, 1], dtype=bool)  # two discordant pairs, both for B
    assert mcnemar_p(a, b) == pytest.approx(0.5)


def test_too_few_shared_items_give_no_comparison():
    assert compare("x", "A", "B", {"q1": 1.0}, {"q1": 0.0}, True) is None
