"""Routing rules, idempotent loop start (Stubber: moto has no A2I), and the results path into datasets."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings, strategies as st

from lambdas.runtime.human_review.loops import ReviewInputTooLarge, start_review
from lambdas.runtime.human_review.model import ReviewInput
from lambdas.runtime.human_review.results import (
    InvalidReviewOutput, evaluation_records, fine_tuning_pairs, parse_review_output, review_metrics,
    write_local_dataset_version,
)
from lambdas.runtime.human_review.routing import RoutingRules, review_reasons

FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/llmops-dev-review-flow-abc"
REVIEW = ReviewInput(
    interaction_id="q-2026-12-02-0001", question="How long do refunds take?", answer="Five days [1].",
    contexts=({"text": "Refunds take 5 business days.", "source": "s3://data/uploads/faq.md"},),
    prompt_id="rag-answer", prompt_version=2, model="llmops-dev-llm",
)


@pytest.mark.parametrize("metrics, feedback, reason", [
    ({"relevance": 0.1}, None, "relevance 0.10 < 0.3"),
    ({"hallucination": 0.8}, None, "hallucination 0.80 > 0.5"),
    ({"toxicity": 0.9}, None, "toxicity 0.90 > 0.5"),
    ({"refusal": 1.0}, None, "refusal"),
    ({"top_score": 0.05}, None, "top retrieval score 0.05 < 0.2"),
    ({}, "down", "negative feedback"),
])
def test_each_rule_routes_to_review(metrics, feedback, reason):
    assert reason in review_reasons("x", metrics, RoutingRules(sample_rate=0), feedback)


def test_good_answers_are_not_routed_unless_sampled():
    good = {"relevance": 0.9, "hallucination": 0.0, "toxicity": 0.0, "refusal": 0.0, "top_score": 0.8}
    assert review_reasons("x", good, RoutingRules(sample_rate=0)) == []
    assert review_reasons("x", good, RoutingRules(sample_rate=1)) == ["sampled (100%)"]


def test_sampling_is_stable_and_near_the_rate():
    rules = RoutingRules(sample_rate=0.1)
    chosen = [bool(review_reasons(f"id-{i}", {}, rules)) for i in range(5000)]
    assert chosen == [bool(review_reasons(f"id-{i}", {}, rules)) for i in range(5000)]  # same id, same answer
    assert 0.08 < sum(chosen) / len(chosen) < 0.12


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["relevance", "toxicity", "top_score", "refusal"]),
                       st.one_of(st.none(), st.text(max_size=5), st.booleans(), st.floats(allow_nan=False))))
def test_odd_metric_values_never_crash_routing(metrics):
    review_reasons("id", metrics, RoutingRules())


def _a2i():
    client = boto3.client("sagemaker-a2i-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_loop_start_is_idempotent_on_the_interaction_id():
    client, stub = _a2i()
    expected = {"HumanLoopName": REVIEW.loop_name(), "FlowDefinitionArn": FLOW,
                "HumanLoopInput": {"InputContent": json.dumps(REVIEW.model_dump(mode="json"), separators=(",", ":"))}}
    stub.add_response("start_human_loop", {"HumanLoopArn": FLOW.replace("flow-definition", "human-loop")}, expected)
    stub.add_client_error("start_human_loop", service_error_code="ConflictException", http_status_code=409,
                          expected_params=expected)
    with stub:
        assert start_review(client, FLOW, REVIEW) == "started"
        assert start_review(client, FLOW, REVIEW) == "exists"  # a redelivered message
    assert REVIEW.loop_name() == ReviewInput(**{**REVIEW.model_dump(), "answer": "other"}).loop_name()


def test_other_a2i_errors_propagate_for_redelivery():
    client, stub = _a2i()
    stub.add_client_error("start_human_loop", service_error_code="ThrottlingException", http_status_code=400)
    with stub, pytest.raises(Exception, match="ThrottlingException"):
        start_review(client, FLOW, REVIEW)


def test_an_oversized_review_is_refused_before_the_call():
    client, _ = _a2i()
    big = ReviewInput(**{**REVIEW.model_dump(), "contexts": [{"text": "x" * 19_000, "source": ""}] * 6})
    with pytest.raises(ReviewInputTooLarge, match="A2I takes at most 100000"):
        start_review(client, FLOW, big)


def _output(*answers, **extra):
    return {"flowDefinitionArn": FLOW, "humanLoopName": REVIEW.loop_name(),
            "inputContent": REVIEW.model_dump(mode="json"),
            "humanAnswers": [{"answerContent": a, "workerId": f"w{i}", "submissionTime": "2026-12-02T10:00:00Z"}
                             for i, a in enumerate(answers)], **extra}


def test_review_output_shapes_are_parsed():
    out = _output(
        {"rating": {"2": True, "1": False}, "unsupported_claim": {"on": True}, "wrong_citation": False,
         "corrected_answer": "  Refunds take 5 business days [1].  "},
        {"rating": "4", "off_topic": "on", "corrected_answer": ""},
    )
    review = parse_review_output(json.dumps(out).encode())
    assert [a.rating for a in review.answers] == [2, 4] and review.mean_rating == 3
    assert review.answers[0].problems == ("unsupported_claim",) and review.answers[1].problems == ("off_topic",)
    assert review.corrected_answer == "Refunds take 5 business days [1]."
    assert review.problem_rates["unsupported_claim"] == 0.5


@pytest.mark.parametrize("raw, message", [
    (b"\xff\xfe", "not UTF-8"),
    ("{oops", "not JSON"),
    (json.dumps({"humanAnswers": []}), "humanLoopName: missing"),
    (json.dumps(_output()), "humanAnswers: no answers"),
    (json.dumps(_output({"rating": 9})), "answerContent.rating"),
    (json.dumps(_output({"off_topic": True})), "answerContent.rating: missing"),
    (json.dumps(_output({"rating": {"1": True, "2": True}})), "rating: expected exactly one choice"),
    (json.dumps({**_output({"rating": 3}), "inputContent": {"question": "q"}}), "inputContent.interaction_id"),
])
def test_malformed_review_output_names_the_field(raw, message):
    with pytest.raises(InvalidReviewOutput, match=message):
        parse_review_output(raw)


def test_corrections_become_a_dataset_version_and_ratings_an_evaluation_set(tmp_path):
    reviews = [parse_review_output(_output({"rating": 2, "corrected_answer": "Refunds take 5 business days [1]."})),
               parse_review_output(_output({"rating": 5}))]
    pairs = fine_tuning_pairs(reviews)
    assert pairs == [{"instruction": "How long do refunds take?", "response": "Refunds take 5 business days [1].",
                      "input": "[1] Refunds take 5 business days."}]
    folder = write_local_dataset_version(tmp_path, "reviewed-answers", pairs, ["reviews/x/output.json"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder.name == "v1" and manifest["format"] == "instruction" and manifest["record_count"] == 1
    assert write_local_dataset_version(tmp_path, "reviewed-answers", pairs, []).name == "v2"
    evaluation = evaluation_records(reviews)
    assert evaluation[0]["human_rating"] == 2 and evaluation[0]["metadata"]["prompt_version"] == 2
    metrics = review_metrics(reviews)
    assert metrics[("rag-answer@2", "llmops-dev-llm")]["MeanRating"] == 3.5


def test_results_publish_into_the_data_prep_dataset_layout_on_s3(monkeypatch):
    from moto import mock_aws

    # As the results function is configured (the permissions contract maps these onto its role).
    monkeypatch.setenv("DATA_BUCKET", "data")
    monkeypatch.setenv("REVIEW_DATASET", "reviewed-answers")

    from lambdas.runtime.data_prep.datasets import publish_dataset_version, read_dataset_version

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        pairs = fine_tuning_pairs([parse_review_output(_output({"rating": 1, "corrected_answer": "Five business days [1]."}))])
        version = publish_dataset_version(s3, "data", dataset="reviewed-answers", fmt="instruction", records=pairs,
                                          sources=["reviews/loop/output.json"])
        manifest, records = read_dataset_version(s3, "data", "reviewed-answers", version.version)
        assert records == pairs and manifest["dataset"] == "reviewed-answers"
