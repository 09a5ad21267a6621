"""Data-prep constructs refuse bad props with a message that names the prop."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms

from llmops.constructs.data_prep.workflow import DataPrepWorkflow
from llmops.constructs.data_prep.document_extraction import DocumentExtraction
from llmops.constructs.data_prep.labeling_workteam import LabelingWorkteam
from llmops.constructs.data_prep.pii_redaction import PiiRedaction


@pytest.fixture
def stack():
    app = App(context={"aws:cdk:bundling-stacks": []})
    s = Stack(app, "S")
    return s, kms.Key(s, "K")


def test_unknown_textract_feature(stack) -> None:
    s, key = stack
    with pytest.raises(ValueError, match=r"features: unknown Textract feature\(s\) \['QUERIES'\]; allowed"):
        DocumentExtraction(s, "E", key=key, data=None, artifacts=None, network=None, dead_letter_queue=None, features=["TABLES", "QUERIES"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mask": ""}, "mask: must not be empty"), ({"min_score": 1.5}, "min_score: must be between 0 and 1"), ({"pii_entity_types": ()}, "pii_entity_types")],
)
def test_bad_redaction_props(stack, kwargs, message) -> None:
    s, key = stack
    with pytest.raises(ValueError, match=message):
        PiiRedaction(s, "R", key=key, data=None, artifacts=None, network=None, **kwargs)


def test_bad_workflow_and_workteam_props(stack) -> None:
    s, key = stack
    with pytest.raises(ValueError, match="throttle_max_attempts: must be at least 1"):
        DataPrepWorkflow(s, "W", key=key, validate=None, extract_start=None, enrich=None, custom_step=None, publish=None, quarantine=None, throttle_max_attempts=0)
    with pytest.raises(ValueError, match="name: workteam names are 1-63 characters"):
        LabelingWorkteam(s, "T", name="x" * 64, key=key)
