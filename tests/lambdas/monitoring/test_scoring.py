"""Batch scorer with the real MiniLM model: relevance, hallucination, repeatability, rows + rejected lines."""

from __future__ import annotations

import json

import pytest

from lambdas.runtime.monitoring.scoring import metric_set, score_lines

pytestmark = pytest.mark.xdist_group("minilm")

CONTRACT = "Either party may end the employment contract with a notice period of thirty days."


def line(**record):
    return json.dumps(record)


def test_scores_rows_and_rejects_bad_lines(minilm):
    lines = [
        line(prompt="What is the notice period?", response="The notice period is thirty days.", contexts=[CONTRACT]),
        "{broken",
        line(prompt="What is the notice period?", response="Bananas are rich in potassium and grow in the tropics.",
             contexts=[CONTRACT]),
        line(prompt="Tell me a joke", response="Why did the chicken cross the road? To get to the other side."),
        line(prompt="Tell me a joke", response="Why did the chicken cross the road? It wanted to reach the far side."),
        line(prompt="x"),
    ]
    result = score_lines(lines, embedder=minilm)
    assert [(r.line, r.reason) for r in result.rejected] == [(2, "not JSON (Expecting property name enclosed in double quotes at char 1)"),
                                                            (6, "missing 'response'")]
    grounded, bananas, joke1, joke2 = result.rows
    assert [r["line"] for r in result.rows] == [1, 3, 4, 5]
    assert grounded["relevance"] > 0.5 > bananas["relevance"]
    assert grounded["hallucination"] == 0.0 and bananas["hallucination"] == 1.0
    assert "hallucination" not in joke1  # no contexts, no hallucination proxy
    assert joke1["repeatability"] == joke2["repeatability"] > 0.7
    assert "repeatability" not in grounded or grounded["repeatability"] == bananas["repeatability"]
    assert len(result.centroid) == 384
    for row in result.rows:
        assert set(row) - {"line", "id"} <= set(metric_set(True))


def test_no_model_run_skips_embedding_metrics():
    result = score_lines([line(prompt="q", response="a", contexts=["c"])], use_model=False)
    assert "relevance" not in result.rows[0] and "hallucination" not in result.rows[0]
    assert result.centroid is None and "toxicity" in result.rows[0]
