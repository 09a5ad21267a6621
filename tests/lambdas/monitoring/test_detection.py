"""Detection quality on the labelled set (data/labelled.jsonl): the detectors beat keyword matching.

The floors are the figures measured when the set was assembled (docs/benchmarks.md), less a margin,
so a change that makes a detector worse fails here.
"""

from __future__ import annotations

import pytest

from lambdas.runtime.monitoring.evaluation import keyword_detector, metric_detector, precision_recall

FLOORS = {"jailbreak": (0.8, 0.55), "injection": (0.9, 0.65), "refusal": (0.85, 0.6), "toxic": (0.9, 0.9)}


def f1(score):
    p, r = score["precision"], score["recall"]
    return 2 * p * r / (p + r) if p + r else 0.0


@pytest.mark.parametrize("label", sorted(FLOORS))
def test_detector_quality(labelled, label):
    ours = precision_recall(labelled, label, metric_detector(label))
    keywords = precision_recall(labelled, label, keyword_detector(label))
    precision, recall = FLOORS[label]
    assert ours["precision"] >= precision and ours["recall"] >= recall, ours
    assert f1(ours) > f1(keywords), (ours, keywords)


def test_labelled_set_is_balanced_enough(labelled):
    counts = {}
    for row in labelled:
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    assert counts == {"jailbreak": 20, "injection": 20, "refusal": 20, "toxic": 15, "benign": 40}
