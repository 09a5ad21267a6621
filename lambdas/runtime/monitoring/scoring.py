"""Batch scorer: lines (a local file, an S3 object's lines) → one metrics row per record + rejected lines.

Embedding metrics batch every text of the whole input through the embedder at once, and toxicity
runs the classifier once over all texts: per-record calls would pay the model overhead per record.
A Lambda or Processing job calls ``score_lines(body.iter_lines())`` and writes ``rows``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdas.runtime.monitoring import metrics as m
from lambdas.runtime.monitoring.capture import Parsed, Rejected, parse_lines


@dataclass
class ScoreResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # Mean prompt embedding of the batch (for centroid drift); None without the model.
    centroid: list[float] | None = None


def default_embedder() -> Any:
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder

    return LocalMiniLMEmbedder()


def metric_set(use_model: bool) -> list[str]:
    """Names a scorer run can produce; baselines record it so drift compares like with like."""
    costs = {"cheap", "classifier", "embedding", "batch"} if use_model else {"cheap", "classifier"}
    return [metric.name for metric in m.METRICS if metric.cost in costs]


def score_records(parsed: Sequence[Parsed], *, embedder: Any = None, use_model: bool = True) -> ScoreResult:
    result = ScoreResult()
    rows = []
    for item in parsed:
        row: dict[str, Any] = {"line": item.line}
        if item.record_id:
            row["id"] = item.record_id
        row.update(m.cheap_record_metrics(item.record))
        rows.append(row)
    records = [item.record for item in parsed]
    tox = m.toxicity([r.response for r in records] + [r.prompt for r in records])
    for i, row in enumerate(rows):
        row["toxicity"] = tox[i]
        row["prompt_toxicity"] = tox[len(records) + i]
    if use_model and records:
        _embedding_metrics(records, rows, embedder or default_embedder(), result)
    result.rows = rows
    return result


def _embedding_metrics(records: Sequence[Any], rows: list[dict[str, Any]], embedder: Any, result: ScoreResult) -> None:
    import numpy as np

    texts: list[str] = []
    index: dict[str, int] = {}

    def slot(text: str) -> int:
        if text not in index:
            index[text] = len(texts)
            texts.append(text)
        return index[text]

    plan = []
    for record in records:
        sentences = m.sentences(record.response) if record.contexts is not None else []
        plan.append((slot(record.query), slot(record.response), slot(record.prompt),
                     [slot(s) for s in sentences], [slot(c) for c in record.contexts or ()], sentences))
    vectors = np.asarray(embedder.embed_documents(texts), dtype=float)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1, norms)
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for i, (query, response, prompt, sentence_ids, context_ids, sentences) in enumerate(plan):
        rows[i]["relevance"] = float(vectors[query] @ vectors[response])
        by_prompt[records[i].prompt].append(i)
        if records[i].contexts is not None:
            cos = (vectors[sentence_ids] @ vectors[context_ids].T).tolist() if sentence_ids and context_ids else []
            rows[i]["hallucination"] = m.hallucination_share(sentences, records[i].contexts, cos)
    for members in by_prompt.values():
        if len(members) < 2:
            continue
        answers = vectors[[plan[i][1] for i in members]]
        sims = answers @ answers.T
        for k, i in enumerate(members):
            rows[i]["repeatability"] = float((sims[k].sum() - sims[k, k]) / (len(members) - 1))
    result.centroid = vectors[[p[2] for p in plan]].mean(axis=0).round(6).tolist()


def score_lines(lines: Iterable[str | bytes], *, embedder: Any = None, use_model: bool = True) -> ScoreResult:
    """Parse and score; rejected lines (with reasons) come back beside the rows, nothing is dropped."""
    parsed: list[Parsed] = []
    rejected: list[Rejected] = []
    for item in parse_lines(lines):
        (parsed if isinstance(item, Parsed) else rejected).append(item)
    result = score_records(parsed, embedder=embedder, use_model=use_model)
    result.rejected = rejected
    return result


def naive_score_lines(lines: Iterable[str | bytes], *, embedder: Any) -> list[dict[str, Any]]:
    """Benchmark baseline: the same metrics record by record (one model call per text), no batching."""
    rows = []
    for item in parse_lines(lines):
        if isinstance(item, Parsed):
            rows.append(score_records([item], embedder=embedder).rows[0])
    return rows
