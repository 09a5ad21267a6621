"""Baselines and drift on synthetic distributions: a shifted metric is flagged, an unshifted one is not."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import numpy as np
import pytest

from lambdas.runtime.monitoring import drift as d
from lambdas.runtime.monitoring.metrics import METRIC_SET_VERSION

METRICS = ["sentiment", "toxicity", "response_tokens"]


def rows(n, seed, *, sentiment_shift=0.0, tokens_scale=1.0):
    rng = np.random.default_rng(seed)
    return [{"sentiment": float(s), "toxicity": float(t), "response_tokens": float(k)}
            for s, t, k in zip(np.clip(rng.normal(0.2 + sentiment_shift, 0.3, n), -1, 1), rng.beta(1, 20, n),
                               rng.poisson(80 * tokens_scale, n))]


@pytest.fixture(scope="module")
def baseline():
    return d.build_baseline(rows(2000, 1), metric_set=METRICS, source={"file": "eval.jsonl"},
                            now=datetime(2026, 12, 2, tzinfo=timezone.utc))


def verdicts(results):
    return {r.metric: r.verdict for r in results}


def test_baseline_shape(baseline):
    assert baseline["format"] == d.BASELINE_FORMAT and baseline["metric_set_version"] == METRIC_SET_VERSION
    assert baseline["created_at"] == "2026-12-02T00:00:00+00:00" and baseline["records"] == 2000
    entry = baseline["metrics"]["sentiment"]
    assert sum(entry["histogram"]["counts"]) == 2000 and len(entry["histogram"]["edges"]) == d.BINS + 1
    assert entry["summary"]["count"] == 2000 and entry["summary"]["p05"] < entry["summary"]["p50"] < entry["summary"]["p95"]
    assert len(entry["sample"]) == 2000
    json.dumps(baseline)  # a plain JSON document


def test_same_distribution_is_not_flagged(baseline):
    assert verdicts(d.drift(baseline, rows(800, 2))) == {m: "ok" for m in METRICS}


def test_shifted_metrics_are_flagged_and_only_those(baseline):
    results = d.drift(baseline, rows(800, 3, sentiment_shift=-0.4, tokens_scale=1.5))
    assert verdicts(results) == {"sentiment": "drift", "toxicity": "ok", "response_tokens": "drift"}
    sentiment = next(r for r in results if r.metric == "sentiment")
    assert sentiment.psi > d.PSI_THRESHOLD and sentiment.ks_pvalue < 1e-6
    assert sentiment.current_mean < sentiment.baseline_mean


def test_small_shift_caught_by_ks_when_psi_is_below_threshold(baseline):
    results = {r.metric: r for r in d.drift(baseline, rows(3000, 4, sentiment_shift=-0.08))}
    assert results["sentiment"].psi < d.PSI_THRESHOLD
    assert results["sentiment"].verdict == "drift" and results["sentiment"].ks_statistic >= d.KS_MIN_STATISTIC


def test_too_few_records_and_absent_metrics(baseline):
    assert set(verdicts(d.drift(baseline, rows(5, 5))).values()) == {"insufficient"}
    base = d.build_baseline(rows(100, 6), metric_set=METRICS + ["hallucination"], source={})
    assert verdicts(d.drift(base, rows(100, 7)))["hallucination"] == "absent"


def test_psi_hand_computed():
    # shares (0.5, 0.5) vs (0.25, 0.75): (0.25-0.5)ln(0.5) + (0.75-0.5)ln(1.5)
    assert d.psi([50, 50], [25, 75]) == pytest.approx(-0.25 * math.log(0.5) + 0.25 * math.log(1.5))
    assert d.psi([10, 10], [10, 10]) == 0.0


def test_values_outside_the_baseline_range_land_in_the_end_bins(baseline):
    edges = baseline["metrics"]["sentiment"]["histogram"]["edges"]
    assert sum(d._histogram([edges[0] - 5, edges[-1] + 5], edges)) == 2


def test_baseline_with_another_metric_set_or_version_is_refused(baseline):
    d.check_baseline(baseline, METRICS)
    with pytest.raises(d.BaselineError, match="missing from the baseline: relevance; not computed now: toxicity"):
        d.check_baseline(baseline, ["sentiment", "response_tokens", "relevance"])
    with pytest.raises(d.BaselineError, match=f"metric_set_version is 0, this scorer's is {METRIC_SET_VERSION}"):
        d.check_baseline({**baseline, "metric_set_version": 0}, METRICS)
    with pytest.raises(d.BaselineError, match="not a monitoring baseline"):
        d.check_baseline({"metrics": {}}, METRICS)
    broken = json.loads(json.dumps(baseline))
    broken["metrics"]["toxicity"]["histogram"]["counts"].pop()
    with pytest.raises(d.BaselineError, match="metrics.toxicity: histogram"):
        d.check_baseline(broken, METRICS)
    with pytest.raises(d.BaselineError, match="no scored records"):
        d.build_baseline([], metric_set=METRICS, source={})


def test_large_inputs_keep_a_bounded_sample():
    base = d.build_baseline(rows(12000, 8), metric_set=METRICS, source={})
    sample = base["metrics"]["sentiment"]["sample"]
    assert len(sample) == d.MAX_SAMPLE and sample == sorted(sample)
    assert verdicts(d.drift(base, rows(1000, 9))) == {m: "ok" for m in METRICS}


def test_html_report_has_a_plot_per_metric_and_no_network(baseline):
    results = d.drift(baseline, rows(800, 3, sentiment_shift=-0.4))
    page = d.report_html(results, baseline=baseline, current_source="today.jsonl", centroid=0.01)
    assert page.count("<svg") == len(METRICS)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script" not in page and "1 of 3 metrics drifted" in page
    assert page.index("sentiment") < page.index("toxicity")  # drifted metrics first


def test_centroid_distance():
    assert d.centroid_distance({"centroid": [1.0, 0.0]}, [1.0, 0.0]) == pytest.approx(0.0)
    assert d.centroid_distance({"centroid": [1.0, 0.0]}, [0.0, 1.0]) == pytest.approx(1.0)
    assert d.centroid_distance({"centroid": None}, [1.0]) is None


def test_tied_values_are_not_a_shift():
    # Discrete metrics (four distinct answers) tie exactly; the stored sample must keep them tied.
    values = [45.64500000000001, 59.745000000000005, 92.965, 94.30000000000001]
    base = d.build_baseline([{"sentiment": values[i % 4]} for i in range(120)], metric_set=["sentiment"], source={})
    base = json.loads(json.dumps(base))  # through the file format
    [result] = d.drift(base, [{"sentiment": values[(i + 1) % 4]} for i in range(120)])
    assert result.verdict == "ok" and result.ks_statistic == 0.0
