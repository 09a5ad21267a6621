"""The experiment statistics against known cases, and the judge's verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from lambdas.runtime.experiments.judge import arms_from_records, judge
from lambdas.runtime.experiments.stats import Comparison, bootstrap_difference, compare, holm


def _records(values: dict[str, np.ndarray]) -> list[dict]:
    n = len(next(iter(values.values())))
    return [{"metrics": {m: float(v[i]) for m, v in values.items()}} for i in range(n)]


def test_bootstrap_interval_covers_the_true_difference_and_is_reproducible():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 400), rng.normal(0.3, 1, 400)
    diff, low, high = bootstrap_difference(a, b, seed=7)
    assert diff == pytest.approx(b.mean() - a.mean())
    assert low < 0.3 < high and low < diff < high
    assert bootstrap_difference(a, b, seed=7) == (diff, low, high)


def test_p_value_is_scipys_mann_whitney_u():
    a, b = [0.1, 0.4, 0.35, 0.8, 0.2], [0.6, 0.7, 0.9, 0.65, 0.75]
    assert compare("relevance", "A", a, "B", b).p_value == pytest.approx(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def test_holm_adjusts_like_the_textbook_example():
    ps = [0.01, 0.04, 0.03, 0.005]
    cs = [Comparison("m", "A", "B", 2, 2, 0, 0, 0, 0, 0, p) for p in ps]
    adjusted = [c.p_adjusted for c in holm(cs, 0.05)]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [c.significant for c in holm(cs, 0.05)] == [True, False, False, True]


def test_identical_arms_are_declared_different_at_most_at_the_false_positive_rate():
    rng = np.random.default_rng(2026)
    runs, alpha, false_positives = 300, 0.05, 0
    for _ in range(runs):
        arms = {arm: _records({"relevance": rng.beta(5, 2, 120), "latency_ms": rng.gamma(3, 200, 120)}) for arm in ("A", "B")}
        verdict = judge("aa", arms, ["relevance", "latency_ms"], min_samples=100, alpha=alpha, resamples=200)
        false_positives += verdict.status != "no-difference"
    # Holm over two metrics keeps the family-wise rate at or below alpha; allow binomial noise (3 sd).
    assert false_positives / runs <= alpha + 3 * (alpha * (1 - alpha) / runs) ** 0.5


def test_a_known_shift_is_found_with_the_expected_power():
    rng = np.random.default_rng(7)
    runs, found = 200, 0
    for _ in range(runs):
        arms = {"A": _records({"relevance": rng.normal(0.60, 0.10, 100)}),
                "B": _records({"relevance": rng.normal(0.65, 0.10, 100)})}  # +0.5 sd
        verdict = judge("shift", arms, ["relevance"], min_samples=100, resamples=200)
        found += verdict.status == "winner" and verdict.winner == "B"
    assert found / runs >= 0.85  # analytic power of the rank test here is about 0.93


def test_lower_is_better_metrics_pick_the_faster_arm():
    rng = np.random.default_rng(3)
    arms = {"A": _records({"latency_ms": rng.normal(900, 50, 150)}), "B": _records({"latency_ms": rng.normal(700, 50, 150)})}
    verdict = judge("latency", arms, ["latency_ms"], min_samples=100)
    assert verdict.status == "winner" and verdict.winner == "B"
    assert verdict.comparisons[0].difference < 0


def test_too_few_samples_is_not_yet_decidable():
    arms = {"A": _records({"relevance": np.ones(10)}), "B": _records({"relevance": np.zeros(10)})}
    verdict = judge("small", arms, ["relevance"], min_samples=100)
    assert verdict.status == "not-yet-decidable" and "too few samples in A (10), B (10)" in verdict.notes[0]


def test_mixed_results_say_which_arm_wins_where():
    rng = np.random.default_rng(4)
    arms = {"A": _records({"relevance": rng.normal(0.7, 0.05, 200), "latency_ms": rng.normal(500, 20, 200)}),
            "B": _records({"relevance": rng.normal(0.6, 0.05, 200), "latency_ms": rng.normal(300, 20, 200)})}
    verdict = judge("mixed", arms, ["relevance", "latency_ms"], min_samples=100)
    assert verdict.status == "mixed" and "relevance->A" in verdict.notes[0] and "latency_ms->B" in verdict.notes[0]


def test_arms_come_from_record_metadata_and_bad_input_is_named():
    records = [{"metadata": {"prompt_version": 1}}, {"metadata": {"prompt_version": 2}}, {"metadata": {}}]
    assert set(arms_from_records(records, "prompt_version")) == {"1", "2"}
    with pytest.raises(ValueError, match="needs at least two arms"):
        judge("one", {"A": []}, ["relevance"])
    with pytest.raises(ValueError, match="control arm 'C' has no records"):
        judge("ctl", {"A": [], "B": []}, ["relevance"], control="C")
