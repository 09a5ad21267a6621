"""Monitoring benchmarks, each figure beside a baseline measured in the same run.

1. Batch scorer throughput (records/s, all metrics, real MiniLM model on CPU): ``score_lines``,
   which embeds every text of the batch in one call and runs the toxicity classifier once, vs. a
   naive loop scoring record by record (the same metrics, one model call per record).
2. Per-request overhead of the cheap metrics in the query path: building and serialising the RAG
   query's EMF metric set (powertools ``Metrics``, the handler's own metrics) with and without
   ``cheap_metrics`` added, p50/p95 over realistic answers, every one a different text; warm process,
   as a warm Lambda.
3. Detection quality (precision/recall at 0.5) on tests/lambdas/monitoring/data/labelled.jsonl
   vs. keyword matching.

Run: ``python benchmarks/bench_monitoring.py [--quick] [--only batch|cheap|detection]``
(2-8 minutes on 2 busy cores, most of it the naive baseline of 1.).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bench")

from lambdas.runtime.monitoring import metrics as m  # noqa: E402
from lambdas.runtime.monitoring.evaluation import KEYWORDS, keyword_detector, metric_detector, precision_recall  # noqa: E402
from lambdas.runtime.monitoring.scoring import naive_score_lines, score_lines  # noqa: E402

SENTENCES = [
    "Either party may end the contract with thirty days of written notice.",
    "Refunds are paid to the original card within fourteen days of the return.",
    "The warranty covers manufacturing defects for two years from delivery.",
    "Employees accrue twenty-five days of paid leave per calendar year.",
    "Invoices are due thirty days after the invoice date unless agreed otherwise.",
    "Laptops must be encrypted and locked when left unattended.",
    "Overtime needs written approval from the line manager in advance.",
    "Shipping to islands takes up to five working days longer.",
]


def records(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        contexts = rng.sample(SENTENCES, 3)
        answer = " ".join(rng.sample(contexts, 2) + ([rng.choice(SENTENCES)] if i % 3 == 0 else []))
        out.append(json.dumps({"prompt": f"Question {i % 40}: {rng.choice(SENTENCES).split(' ', 4)[-1]}?",
                               "response": answer, "contexts": contexts}))
    return out


def bench_batch(n: int) -> None:
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder

    embedder = LocalMiniLMEmbedder()
    lines = records(n)
    score_lines(lines[:8], embedder=embedder)  # load the model and classifiers outside the timing
    start = time.perf_counter()
    batch = score_lines(lines, embedder=embedder)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    naive = naive_score_lines(lines, embedder=embedder)
    naive_s = time.perf_counter() - start
    assert len(batch.rows) == len(naive) == n
    same = all(abs(a["relevance"] - b["relevance"]) < 1e-4 for a, b in zip(batch.rows, naive))
    print(f"1. batch scorer, {n} records with 3 contexts each, all metrics, MiniLM on CPU")
    print(f"   score_lines (batched model calls): {n / batch_s:8.1f} records/s")
    print(f"   naive per-record loop (baseline):  {n / naive_s:8.1f} records/s   ratio {naive_s / batch_s:.1f}x"
          f"   (relevance identical: {same})")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def bench_cheap(n: int) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics()
    rng = random.Random(3)
    answers = [(f"What does the policy say about {rng.choice(['refunds', 'leave', 'notice', 'laptops'])}?",
                " ".join(rng.sample(SENTENCES, rng.randint(2, 6)))) for _ in range(200)]

    def handler_metrics(with_cheap: bool, prompt: str, response: str) -> None:
        metrics.add_dimension(name="PromptId", value="rag-answer")
        metrics.add_metric(name="ChunksRetrieved", unit=MetricUnit.Count, value=4)
        metrics.add_metric(name="TopScore", unit=MetricUnit.NoUnit, value=0.82)
        metrics.add_metric(name="RetrievalMs", unit=MetricUnit.Milliseconds, value=12.0)
        if with_cheap:
            for name, value in m.cheap_metrics(prompt, response).items():
                metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
        json.dumps(metrics.serialize_metric_set())
        metrics.clear_metrics()

    for prompt, response in answers[:20]:  # warm: tokenizer, VADER lexicon, textstat/Pyphen, regexes
        handler_metrics(True, prompt, response)
    timings: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for i in range(n):
        prompt, response = answers[i % len(answers)]
        response = f"{response} Reference {i}."  # unique text per request: no library cache hits
        for with_cheap in (False, True):
            start, start_cpu = time.perf_counter(), time.thread_time()
            handler_metrics(with_cheap, prompt, response)
            timings[with_cheap].append((time.perf_counter() - start) * 1000)
            cpu[with_cheap].append((time.thread_time() - start_cpu) * 1000)
    base, cheap = timings[False], timings[True]
    print(f"2. query-path EMF per request ({n} requests, answers of 2-6 sentences, warm process)")
    print(f"   handler metrics only (baseline):   p50 {percentile(base, 50):.3f} ms  p95 {percentile(base, 95):.3f} ms")
    print(f"   + cheap_metrics ({len(m.ALWAYS)} metrics):     p50 {percentile(cheap, 50):.3f} ms  "
          f"p95 {percentile(cheap, 95):.3f} ms   added p95 {percentile(cheap, 95) - percentile(base, 95):.3f} ms")
    # CPU time of this thread: what the request itself costs, without waits for a busy machine's other jobs.
    print(f"   CPU time, baseline / + cheap:      p50 {percentile(cpu[False], 50):.3f} / {percentile(cpu[True], 50):.3f} ms  "
          f"p95 {percentile(cpu[False], 95):.3f} / {percentile(cpu[True], 95):.3f} ms   "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


def bench_cold(repeat: int = 3) -> None:
    import subprocess

    def fresh(code: str) -> float:
        times = []
        for _ in range(repeat):
            out = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter()\n" + code +
                                  "\nprint(time.perf_counter() - t)"], cwd=REPO, capture_output=True, text=True, check=True)
            times.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
        return statistics.median(times)

    base = fresh("from aws_lambda_powertools import Metrics")
    cheap = fresh("from aws_lambda_powertools import Metrics\nfrom lambdas.runtime.monitoring.metrics import cheap_metrics\n"
                  "cheap_metrics('What is the notice period?', 'Thirty days. It starts on receipt.')")
    print(f"   cold start, fresh interpreter (median of {repeat}): powertools Metrics import {base:.0f} ms (baseline), "
          f"+ import and first cheap_metrics call {cheap:.0f} ms (+{cheap - base:.0f} ms)")


def bench_detection() -> None:
    rows = [json.loads(line) for line in (REPO / "tests/lambdas/monitoring/data/labelled.jsonl").read_text().splitlines()]
    print(f"3. detection on the labelled set ({len(rows)} texts), threshold 0.5: precision / recall")
    print(f"   {'label':<10}{'metric':>18}{'keywords (baseline)':>24}")
    for label in KEYWORDS:
        ours = precision_recall(rows, label, metric_detector(label))
        kw = precision_recall(rows, label, keyword_detector(label))
        print(f"   {label:<10}{ours['precision']:>10.2f} / {ours['recall']:.2f}{kw['precision']:>15.2f} / {kw['recall']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("batch", "cheap", "detection"))
    args = parser.parse_args()
    if args.only in (None, "batch"):
        bench_batch(60 if args.quick else 200)
    if args.only in (None, "cheap"):
        bench_cheap(300 if args.quick else 2000)
        bench_cold()
    if args.only in (None, "detection"):
        bench_detection()


if __name__ == "__main__":
    main()
