"""DeadLetterQueue template assertions."""

from __future__ import annotations

import pytest
from aws_cdk import Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from llmops.constructs.core.dead_letter_queue import DeadLetterQueue
from tests.helpers import make_app


def test_encrypted_ssl_only_and_acknowledged_as_a_dlq():
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    queue = DeadLetterQueue(stack, "Dlq", key=key, purpose="the test rules")
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value(), "MessageRetentionPeriod": 1209600})
    statements = next(iter(template.find_resources("AWS::SQS::QueuePolicy").values()))["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
    acks = [e.data for e in queue.node.metadata if e.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY]
    assert any("AwsSolutions-SQS3" in k and v == "This queue is the dead-letter queue of the test rules." for a in acks for k, v in a.items())


def test_purpose_is_required():
    stack = Stack(make_app(), "S")
    with pytest.raises(ValueError, match="purpose: say whose failures"):
        DeadLetterQueue(stack, "Dlq", key=kms.Key(stack, "Key"), purpose="")
