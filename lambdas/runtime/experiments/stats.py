"""Two-sample comparisons for experiment arms, corrected for testing several metrics at once.

Per metric: the difference of means with a percentile bootstrap confidence interval (effect size
and its uncertainty, in the metric's own unit) and the two-sided Mann-Whitney U p-value (no
normality assumption: LLM metrics are bounded and skewed). Several metrics and arms are corrected
together with Holm's step-down method, which keeps the family-wise false-positive rate at alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import mannwhitneyu


@dataclass(frozen=True)
class Comparison:
    metric: str
    control: str
    treatment: str
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    difference: float  # treatment - control
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float = 1.0
    significant: bool = False
    higher_is_better: bool = True

    @property
    def better(self) -> str | None:
        """The arm that is better on this metric, when the difference is significant."""
        if not self.significant:
            return None
        treatment_better = (self.difference > 0) == self.higher_is_better
        return self.treatment if treatment_better else self.control


def bootstrap_difference(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000,
                         seed: int = 0) -> tuple[float, float, float]:
    """Mean(b) - mean(a) and its percentile bootstrap interval, vectorised (one draw matrix per arm)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    by = y[rng.integers(0, len(y), size=(resamples, len(y)))].mean(axis=1)
    diffs = by - bx
    tail = (1 - confidence) / 2
    return float(y.mean() - x.mean()), float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))


def compare(metric: str, control: str, a: Sequence[float], treatment: str, b: Sequence[float], *,
            higher_is_better: bool = True, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Comparison:
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"{metric}: need at least 2 samples per arm, got {len(a)} and {len(b)}")
    diff, low, high = bootstrap_difference(a, b, confidence=confidence, resamples=resamples, seed=seed)
    if np.ptp(np.concatenate([np.asarray(a, float), np.asarray(b, float)])) == 0:
        p = 1.0  # identical constant samples: no evidence of any difference
    else:
        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return Comparison(metric, control, treatment, len(a), len(b), float(np.mean(a)), float(np.mean(b)), diff, low, high, p,
                      higher_is_better=higher_is_better)


def holm(comparisons: list[Comparison], alpha: float) -> list[Comparison]:
    """Holm-Bonferroni over the family: adjusted p-values, and which are significant at ``alpha``."""
    order = sorted(range(len(comparisons)), key=lambda i: comparisons[i].p_value)
    m = len(comparisons)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * comparisons[i].p_value))
        adjusted[i] = running
    result = []
    for i, c in enumerate(comparisons):
        result.append(Comparison(**{**c.__dict__, "p_adjusted": adjusted[i], "significant": adjusted[i] <= alpha}))
    return result
