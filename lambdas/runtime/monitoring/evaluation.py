"""Detection quality of the refusal/jailbreak/injection/toxicity scores on a labelled set, beside keywords.

The keyword baseline is what a first attempt looks like: one list of trigger words per label, flagged
when any occurs. Used by the tests (a floor the detectors must keep) and benchmarks/bench_monitoring.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from lambdas.runtime.monitoring import metrics as m

THRESHOLD = 0.5
KEYWORDS = {
    "jailbreak": ("dan", "jailbreak", "jailbroken", "pretend", "roleplay", "developer mode", "no restrictions", "act as"),
    "injection": ("ignore", "system prompt", "instructions", "disregard", "forget"),
    "refusal": ("sorry", "cannot", "can't", "unable", "apologize"),
    "toxic": ("idiot", "stupid", "fuck", "shit", "damn", "hell", "moron", "bitch"),
}


def keyword_detector(label: str) -> Callable[[Sequence[str]], list[float]]:
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in KEYWORDS[label]) + r")\b", re.I)
    return lambda texts: [1.0 if pattern.search(t) else 0.0 for t in texts]


def metric_detector(label: str) -> Callable[[Sequence[str]], list[float]]:
    single = {"jailbreak": m.jailbreak, "injection": m.injection, "refusal": m.refusal}
    if label == "toxic":
        return m.toxicity
    return lambda texts: [single[label](t) for t in texts]


def precision_recall(rows: Sequence[Mapping[str, str]], label: str,
                     detector: Callable[[Sequence[str]], list[float]], threshold: float = THRESHOLD) -> dict[str, float]:
    scores = detector([r["text"] for r in rows])
    tp = sum(1 for r, s in zip(rows, scores) if s >= threshold and r["label"] == label)
    fp = sum(1 for r, s in zip(rows, scores) if s >= threshold and r["label"] != label)
    fn = sum(1 for r, s in zip(rows, scores) if s < threshold and r["label"] == label)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}
