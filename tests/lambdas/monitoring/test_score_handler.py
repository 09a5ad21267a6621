"""The monitoring scorer end to end on moto: capture objects through SQS, interaction-log stream batches,
quarantine of malformed lines, aggregates and drift in CloudWatch, routing to the human-review queue."""

from __future__ import annotations

import importlib
import json
import random
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from moto import mock_aws

from lambdas.runtime.monitoring import batch as b
from lambdas.runtime.monitoring.drift import build_baseline
from lambdas.runtime.monitoring.scoring import metric_set, score_lines
from tests.lambdas.context import LambdaContext
from tests.lambdas.monitoring.test_capture import capture_line

BUCKET = "llmops-data"
ENDPOINT = "llmops-dev-llm"
KEY = f"capture/{ENDPOINT}/AllTraffic/2026/12/02/13/capture-1.jsonl"
ROUTING = {"sample_rate": 0.0, "min_relevance": 0.3, "max_hallucination": 0.5, "max_toxicity": 0.5, "refusal": True,
           "min_top_score": 0.2, "negative_feedback": True}


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "POWERTOOLS_SERVICE_NAME": "monitoring_score", "DATA_BUCKET": BUCKET,
                 "USE_CASES": json.dumps({"default": "assistant", "endpoints": {ENDPOINT: {"canary": "support"}}}),
                 "DRIFT_METRICS": json.dumps(["toxicity", "refusal", "sentiment", "relevance"]),
                 "DRIFT_PSI_THRESHOLD": "0.2", "DRIFT_KS_THRESHOLD": "0.2", "DRIFT_KS_PVALUE": "0.01",
                 "REVIEW_ROUTING": json.dumps(ROUTING)}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        queue_url = boto3.client("sqs").create_queue(QueueName="review")["QueueUrl"]
        monkeypatch.setenv("REVIEW_QUEUE_URL", queue_url)
        module = importlib.import_module("lambdas.monitoring_score.handler")
        module.clients.cache_clear()
        module.settings.cache_clear()
        module._baselines.clear()
        yield {"s3": s3, "cw": boto3.client("cloudwatch"), "sqs": boto3.client("sqs"), "queue": queue_url, "handler": module}
        module.clients.cache_clear()
        module.settings.cache_clear()


def _sqs_event(*keys, bucket=BUCKET):
    records = []
    for i, key in enumerate(keys):
        body = {"version": "0", "source": "aws.s3", "detail-type": "Object Created",
                "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}}
        records.append({"messageId": f"m{i}", "receiptHandle": "r", "body": json.dumps(body), "attributes": {},
                        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:capture", "awsRegion": "us-east-1"})
    return {"Records": records}


def _tgi(prompt, answer, event_id):
    return capture_line({"inputs": prompt, "parameters": {"max_new_tokens": 64}}, [{"generated_text": answer}], event_id=event_id)


def _objects(s3, prefix):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def _lines(s3, key):
    return [json.loads(x) for x in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]


def _metric(cw, name, dims, stat="Sum"):
    now = datetime.now(timezone.utc)
    points = cw.get_metric_statistics(Namespace="LLMOps/Monitoring", MetricName=name, Dimensions=dims,
                                      StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=3600,
                                      Statistics=[stat])["Datapoints"]
    return [p[stat] for p in points]


def test_capture_object_becomes_metrics_rows_aggregates_and_a_quarantine_with_reasons(aws):
    s3, cw = aws["s3"], aws["cw"]
    body = "\n".join([
        _tgi("What is the refund window?", "Refunds are accepted within 30 days of purchase.", "e-1"),
        "{not json",
        _tgi("Tell me a joke", "I'm sorry, but I can't help with that.", "e-2"),
        '{"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}, "endpointOutput": {"data": "[]"}}}',
    ]) + "\n"
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=body.encode())
    result = aws["handler"].handler(_sqs_event(KEY), LambdaContext())
    assert result == {"batchItemFailures": []}

    (obj,) = _objects(s3, "monitoring/metrics/")
    assert obj.startswith("monitoring/metrics/dt=2026-12-02/capture-") and obj.endswith(".jsonl")
    rows = _lines(s3, obj)
    assert [r["interaction_id"] for r in rows] == ["e-1", "e-2"]
    for row in rows:
        assert row["source"] == "capture" and row["endpoint"] == ENDPOINT and row["variant"] == "AllTraffic"
        assert row["use_case"] == "assistant" and 0 <= row["toxicity"] <= 1 and row["prompt_tokens"] > 0
        assert "relevance" not in row  # the MiniLM metrics are the Processing job's (docs/monitoring.md)
    assert rows[1]["refusal"] == 1.0 and rows[0]["refusal"] < 1.0

    (quarantined,) = _objects(s3, "quarantine/monitoring/")
    bad = _lines(s3, quarantined)
    assert [(x["line"], x["origin"]) for x in bad] == [(2, KEY), (4, KEY)]
    assert bad[0]["reason"].startswith("not JSON") and bad[0]["text"] == "{not json"
    assert "not base64" in bad[1]["reason"]

    assert _metric(cw, "MalformedLines", [{"Name": "Source", "Value": "capture"}]) == [2.0]
    assert _metric(cw, "RecordsScored", [{"Name": "UseCase", "Value": "assistant"}, {"Name": "Source", "Value": "capture"}]) == [2.0]
    assert _metric(cw, "refusal", [{"Name": "UseCase", "Value": "assistant"}, {"Name": "Source", "Value": "capture"}], "Maximum") == [1.0]
    # Captured traffic is not routed (RAG answers are routed from the interaction log, with their id).
    assert "Messages" not in aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)


def test_a_redelivered_capture_event_overwrites_its_own_object(aws):
    s3 = aws["s3"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=_tgi("Q?", "An answer.", "e-1").encode())
    aws["handler"].handler(_sqs_event(KEY), LambdaContext())
    aws["handler"].handler(_sqs_event(KEY), LambdaContext())
    assert len(_objects(s3, "monitoring/metrics/")) == 1


def test_a_variant_maps_to_its_use_case():
    use_cases = b.UseCases.from_json(json.dumps({"default": "assistant", "endpoints": {ENDPOINT: {"canary": "support"}}}))
    assert use_cases.of(ENDPOINT, "canary") == "support"
    assert use_cases.of(ENDPOINT, "AllTraffic") == "assistant" and use_cases.of("other", None) == "assistant"


def test_an_event_for_another_bucket_or_a_missing_object_is_a_batch_failure(aws):
    s3 = aws["s3"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=_tgi("Q?", "An answer.", "e-1").encode())
    missing = KEY.replace("capture-1", "gone")
    event = _sqs_event(KEY, missing)
    event["Records"].append(_sqs_event(KEY, bucket="someone-else")["Records"][0] | {"messageId": "m9"})
    result = aws["handler"].handler(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m9"}]}


def test_an_unknown_event_is_refused_by_name(aws):
    with pytest.raises(ValueError, match="neither an SQS batch nor a DynamoDB stream batch"):
        aws["handler"].handler({"Records": [{"eventSource": "aws:s3"}]}, LambdaContext())


# -- drift -------------------------------------------------------------------------------------------

def _baseline_lines(n, rng, refusing=0.0):
    lines = []
    for i in range(n):
        if rng.random() < refusing:
            answer = "I'm sorry, but I can't help with that request."
        else:
            answer = rng.choice(["The refund window is 30 days from delivery.", "Shipping takes three to five business days.",
                                 "You can change the address in your account settings before dispatch.",
                                 "Our support team answers within one working day."])
        lines.append(_tgi(f"Question {i} about orders?", answer, f"e-{i}"))
    return lines


def test_a_synthetic_shift_publishes_drift_that_the_rule_flags_and_no_shift_stays_below(aws):
    s3, cw = aws["s3"], aws["cw"]
    rng = random.Random(7)
    base = score_lines(_baseline_lines(200, rng), use_model=False)
    baseline = build_baseline(base.rows, metric_set=metric_set(True), source={"file": "synthetic"})
    s3.put_object(Bucket=BUCKET, Key="monitoring/baselines/assistant/v1.json", Body=b"{}")  # an older, unusable version
    s3.put_object(Bucket=BUCKET, Key="monitoring/baselines/assistant/v2.json", Body=json.dumps(baseline).encode())

    same = KEY
    shifted = KEY.replace("capture-1", "capture-2")
    s3.put_object(Bucket=BUCKET, Key=same, Body="\n".join(_baseline_lines(120, random.Random(8))).encode())
    s3.put_object(Bucket=BUCKET, Key=shifted, Body="\n".join(_baseline_lines(120, random.Random(9), refusing=0.6)).encode())

    settings = b.Settings.from_env(__import__("os").environ)
    calm = b.process(b.capture_batch(same, s3.get_object(Bucket=BUCKET, Key=same)["Body"].iter_lines()), settings,
                     s3=s3, cloudwatch=cw)
    assert calm.drift["assistant"]["refusal"]["verdict"] == "ok"
    assert set(calm.drift["assistant"]) == {"toxicity", "refusal", "sentiment"}  # relevance: not computed here

    aws["handler"].handler(_sqs_event(shifted), LambdaContext())
    dims = [{"Name": "UseCase", "Value": "assistant"}, {"Name": "Metric", "Value": "refusal"}]
    psi = _metric(cw, "Drift", dims + [{"Name": "Statistic", "Value": "PSI"}], "Maximum")
    ks = _metric(cw, "Drift", dims + [{"Name": "Statistic", "Value": "KS"}], "Maximum")
    p = _metric(cw, "Drift", dims + [{"Name": "Statistic", "Value": "KSPValue"}], "Minimum")
    verdict = _metric(cw, "Drift", dims + [{"Name": "Statistic", "Value": "Rule"}], "Maximum")
    assert psi and ks and p
    rule = b.DriftRule(0.2, 0.2, 0.01)
    assert rule.drifted(psi[0], ks[0], p[0]) and verdict == [1.0]  # what the alarm reads (threshold 1)
    sentiment = _metric(cw, "Drift", [{"Name": "UseCase", "Value": "assistant"}, {"Name": "Metric", "Value": "sentiment"},
                                      {"Name": "Statistic", "Value": "Rule"}], "Minimum")
    assert sentiment == [0.0]  # the calm batch and the shift both left sentiment alone
    # The calm batch published too, below the rule.
    assert not rule.drifted(calm.drift["assistant"]["refusal"]["psi"], calm.drift["assistant"]["refusal"]["ks"],
                            calm.drift["assistant"]["refusal"]["ks_pvalue"])


def test_a_baseline_of_another_metric_set_version_is_counted_not_used(aws):
    s3, cw = aws["s3"], aws["cw"]
    rng = random.Random(3)
    baseline = build_baseline(score_lines(_baseline_lines(40, rng), use_model=False).rows, metric_set=metric_set(False),
                              source={"file": "x"})
    baseline["metric_set_version"] = 999
    s3.put_object(Bucket=BUCKET, Key="monitoring/baselines/assistant/v7.json", Body=json.dumps(baseline).encode())
    s3.put_object(Bucket=BUCKET, Key=KEY, Body="\n".join(_baseline_lines(30, rng)).encode())
    aws["handler"].handler(_sqs_event(KEY), LambdaContext())
    assert _metric(cw, "BaselineRefused", [{"Name": "Source", "Value": "capture"}]) == [1.0]
    assert len(_objects(s3, "monitoring/metrics/")) == 1  # scoring went on


def test_the_drift_rule_needs_both_ks_conditions_or_psi():
    rule = b.DriftRule(psi_threshold=0.2, ks_threshold=0.2, ks_pvalue=0.01)
    assert rule.drifted(0.2, 0.0, 1.0) and rule.drifted(0.0, 0.25, 0.001)
    assert not rule.drifted(0.19, 0.25, 0.02) and not rule.drifted(0.19, 0.15, 0.0001)
    assert rule.options() == {"psi_threshold": 0.2, "ks_min_statistic": 0.2, "ks_pvalue": 0.01}


# -- the interaction log (DynamoDB stream) ----------------------------------------------------------

_ser = TypeSerializer()


def _image(item):
    return {k: _ser.serialize(v) for k, v in item.items()}


def _interaction(iid, question, answer, *, contexts=("Refunds are accepted within 30 days.",), scores=(0.8,), **meta):
    record = {"prompt": question, "question": question, "response": answer, "contexts": list(contexts),
              "metadata": {"id": iid, "source": "rag", "time": "2026-12-02T13:00:00+00:00", "prompt_id": "rag-answer",
                           "prompt_version": 3, "model": ENDPOINT, "scores": list(scores), "embedding_ms": 4,
                           "retrieval_ms": 11, "generation_ms": 420, **meta}}
    return {"interaction_id": iid, "recorded_at": "2026-12-02T13:00:00Z", "expires_at": 1893456000,
            "prompt_id": "rag-answer", "prompt_version": 3, "record": json.dumps(record)}


def _stream(*changes):
    records = []
    for i, (event, new, old) in enumerate(changes):
        ddb = {"SequenceNumber": f"{100 + i}", "Keys": {"interaction_id": {"S": (new or old)["interaction_id"]}},
               "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if new is not None:
            ddb["NewImage"] = _image(new)
        if old is not None:
            ddb["OldImage"] = _image(old)
        records.append({"eventID": str(i), "eventName": event, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                        "dynamodb": ddb, "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"})
    return {"Records": records}


def _received(aws):
    out = []
    while True:
        got = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]
        aws["sqs"].delete_message_batch(QueueUrl=aws["queue"], Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def test_stream_inserts_are_scored_and_routed_by_the_rules_and_the_query_path_flag(aws):
    s3 = aws["s3"]
    good = _interaction("i-good", "How long is the refund window?", "Refunds are accepted within 30 days.",
                        experiment="prompt-ab", arm="b", variant="AllTraffic", embedding_model="minilm")
    refusal = _interaction("i-refusal", "How long is the refund window?", "I'm sorry, but I can't help with that.")
    low_score = _interaction("i-low", "What's the weather?", "Sunny.", scores=(0.05,))
    flagged = _interaction("i-flag", "Question?", "An answer.", review=["user-reported"])
    removed = _interaction("i-old", "Q", "A")
    event = _stream(("INSERT", good, None), ("INSERT", refusal, None), ("INSERT", low_score, None),
                    ("INSERT", flagged, None), ("REMOVE", None, removed))
    assert aws["handler"].handler(event, LambdaContext()) == {"batchItemFailures": []}

    (obj,) = _objects(s3, "monitoring/metrics/")
    assert obj.startswith("monitoring/metrics/dt=2026-12-02/rag-")
    rows = {r["interaction_id"]: r for r in _lines(s3, obj)}
    assert sorted(rows) == ["i-flag", "i-good", "i-low", "i-refusal"]
    g = rows["i-good"]
    assert (g["experiment"], g["arm"], g["variant"], g["embedding_model"], g["latency_ms"]) == ("prompt-ab", "b", "AllTraffic", "minilm", 435.0)
    assert (g["prompt_id"], g["prompt_version"], g["use_case"], g["source"], g["top_score"]) == ("rag-answer", 3, "assistant", "rag", 0.8)

    routed = {m["interaction_id"]: m for m in _received(aws)}
    assert sorted(routed) == ["i-flag", "i-low", "i-refusal"]
    assert routed["i-refusal"]["reasons"] == ["refusal"]
    assert routed["i-low"]["reasons"] == ["top retrieval score 0.05 < 0.2"]
    assert routed["i-flag"]["reasons"] == ["user-reported"]
    assert routed["i-refusal"]["contexts"] == [{"text": "Refunds are accepted within 30 days.", "source": ""}]
    assert routed["i-refusal"]["prompt_version"] == 3 and routed["i-refusal"]["model"] == ENDPOINT
    assert _metric(aws["cw"], "RoutedToReview", [{"Name": "Source", "Value": "rag"}]) == [3.0]


def test_negative_feedback_on_a_modify_is_routed_once(aws):
    before = _interaction("i-1", "How long is the refund window?", "Refunds are accepted within 30 days.")
    down = {**before, "feedback": {"rating": "down", "comment": "wrong", "at": "2026-12-02T13:05:00Z"}}
    up = {**before, "feedback": {"rating": "up", "at": "2026-12-02T13:05:00Z"}}
    event = _stream(("MODIFY", down, before), ("MODIFY", up, before), ("MODIFY", {**down, "x": "y"}, down))
    assert aws["handler"].handler(event, LambdaContext()) == {"batchItemFailures": []}
    routed = _received(aws)
    assert [(m["interaction_id"], m["reasons"]) for m in routed] == [("i-1", ["negative feedback"])]
    assert not _objects(aws["s3"], "monitoring/metrics/")  # feedback is no new interaction to score


def test_an_undecodable_item_is_quarantined_and_a_failed_batch_fails_the_invocation(aws, monkeypatch):
    bad = {"interaction_id": "i-bad", "recorded_at": "2026-12-02T13:00:00Z", "record": "{not json"}
    good = _interaction("i-good", "Q?", "A.")
    assert aws["handler"].handler(_stream(("INSERT", bad, None), ("INSERT", good, None)), LambdaContext()) == {"batchItemFailures": []}
    (quarantined,) = _objects(aws["s3"], "quarantine/monitoring/rag/")
    (line,) = _lines(aws["s3"], quarantined)
    assert line["text"] == "i-bad" and "i-bad" in line["reason"]
    assert _metric(aws["cw"], "MalformedLines", [{"Name": "Source", "Value": "rag"}]) == [1.0]

    monkeypatch.setenv("REVIEW_QUEUE_URL", aws["queue"] + "-gone")
    aws["handler"].settings.cache_clear()
    refusal = _interaction("i-r", "Q?", "I'm sorry, but I can't help with that.")
    before = _objects(aws["s3"], "monitoring/metrics/")
    # The batch fails as a whole: the invocation errors, so Lambda bisects it (BisectBatchOnFunctionError).
    with pytest.raises(Exception, match="NonExistentQueue|does not exist"):
        aws["handler"].handler(_stream(("INSERT", refusal, None), ("INSERT", good, None)), LambdaContext())
    assert _objects(aws["s3"], "monitoring/metrics/") == before  # rows are written last: nothing half-done


def test_with_the_index_embedding_model_rows_carry_relevance_and_hallucination(aws, monkeypatch):
    # EMBEDDING_PROVIDER as the RAG stack hands it over; "local" is the same MiniLM the endpoint serves.
    monkeypatch.setenv("EMBEDDING_PROVIDER", "local")
    aws["handler"].settings.cache_clear()
    body = "\n".join([_tgi("What is the refund window?", "Refunds are accepted within 30 days of purchase.", "e-1"),
                      _tgi("What is the refund window?", "Our office dog is called Biscuit.", "e-2")]) + "\n"
    aws["s3"].put_object(Bucket=BUCKET, Key=KEY, Body=body.encode())
    assert aws["handler"].handler(_sqs_event(KEY), LambdaContext()) == {"batchItemFailures": []}
    (obj,) = _objects(aws["s3"], "monitoring/metrics/")
    on_topic, off_topic = _lines(aws["s3"], obj)
    assert 0 <= off_topic["relevance"] < on_topic["relevance"] <= 1
    assert "ModelMetricsSkipped" not in {m["MetricName"] for m in aws["cw"].list_metrics()["Metrics"]}


def test_a_failing_embedding_endpoint_scores_model_free_and_counts_it(aws, monkeypatch):
    # moto's endpoint answers with a body that is no embedding: the model metrics fail, the batch does not.
    monkeypatch.setenv("EMBEDDING_PROVIDER", "sagemaker")
    monkeypatch.setenv("EMBEDDING_ENDPOINT_NAME", "llmops-dev-embeddings")
    aws["handler"].settings.cache_clear()
    aws["s3"].put_object(Bucket=BUCKET, Key=KEY, Body=(_tgi("Refund window?", "30 days.", "e-1") + "\n").encode())
    assert aws["handler"].handler(_sqs_event(KEY), LambdaContext()) == {"batchItemFailures": []}
    (obj,) = _objects(aws["s3"], "monitoring/metrics/")
    (row,) = _lines(aws["s3"], obj)
    assert "relevance" not in row and 0 <= row["toxicity"] <= 1
    assert _metric(aws["cw"], "ModelMetricsSkipped", [{"Name": "Source", "Value": "capture"}]) == [1.0]
