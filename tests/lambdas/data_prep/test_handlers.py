"""The thin Powertools handlers, called directly (moto cannot run Lambda without Docker)."""

from __future__ import annotations

import importlib
import json
from functools import partial

import pytest

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.aws import client
from tests.lambdas.context import LambdaContext as LambdaContextBase
from tests.lambdas.data_prep.helpers import ARTIFACTS, DATA, received_events, s3_event

Context = partial(LambdaContextBase, function_name="data_prep", remaining_ms=60_000)



@pytest.fixture
def handlers(aws, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LLMOps")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "data_prep")
    client.cache_clear()
    settings = workflow.Settings(data_bucket=DATA, artifacts_bucket=ARTIFACTS, jobs_table="jobs")
    loaded = {}
    for name in ("validate", "quarantine", "extract_result", "labeling"):
        module = importlib.import_module(f"lambdas.data_prep_{name}.handler")
        if hasattr(module, "SETTINGS") and name != "labeling":
            monkeypatch.setattr(module, "SETTINGS", settings)
        loaded[name] = module
    yield loaded
    client.cache_clear()


def test_validate_then_quarantine_handlers(aws, handlers, capsys) -> None:
    version = aws["s3"].put_object(Bucket=DATA, Key="raw/slides.pptx", Body=b"PK\x03\x04")["VersionId"]
    event = s3_event("raw/slides.pptx", version)
    with pytest.raises(Exception) as caught:
        handlers["validate"].handler(event, Context())
    assert type(caught.value).__name__ == "UnsupportedDocument"
    error = {"Error": "UnsupportedDocument", "Cause": json.dumps({"errorMessage": str(caught.value), "errorType": "UnsupportedDocument"})}
    reason = handlers["quarantine"].handler({"input": event, "error": error, "execution_id": "exec-1"}, Context())
    assert reason["quarantine_key"] == "quarantine/raw/slides.pptx"
    assert received_events(aws)[0]["detail"]["error"] == "UnsupportedDocument"
    # Powertools metrics are flushed as EMF on stdout.
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("DocumentsQuarantined") == [1.0] or m.get("DocumentsQuarantined") == 1.0 for m in emf)


def test_extract_result_handler_reads_the_sns_envelope(aws, handlers) -> None:
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:1", "Sns": {
        "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Subject": None,
        "Message": json.dumps({"JobId": "unknown-job", "Status": "SUCCEEDED"}), "Timestamp": "2026-11-25T10:00:00.000Z",
        "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x", "MessageAttributes": {}}}]}
    # An unknown job must fail loudly (the async invocation then lands in the dead-letter queue).
    with pytest.raises(LookupError, match="unknown-job"):
        handlers["extract_result"].handler(event, Context())


def test_labeling_handler_refuses_unknown_events(handlers) -> None:
    with pytest.raises(ValueError, match="action"):
        handlers["labeling"].handler({"hello": "world"}, Context())
