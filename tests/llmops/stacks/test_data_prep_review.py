"""Data-prep stack fixes of issue 10: execution timeout from config, workteam import, raw/ protection."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from llmops.constructs.data_prep.workflow import STEPS_ALLOWANCE_MINUTES, DataPrepWorkflow
from tests.helpers import synth_stage, template_of
from tests.llmops.stacks.test_data_prep_stack import ONLY_DATA_PREP, _definition


@pytest.mark.parametrize("minutes", [5, 120, 1440])
def test_execution_outlives_the_longest_textract_wait(minutes: int) -> None:
    overrides = {**ONLY_DATA_PREP, "data_prep": {"extraction_timeout_minutes": minutes}}
    d = _definition(template_of(synth_stage("dev", overrides).data_prep))
    assert d["States"]["Extract"]["TimeoutSeconds"] == minutes * 60
    assert d["TimeoutSeconds"] == (minutes + STEPS_ALLOWANCE_MINUTES) * 60


def test_an_execution_timeout_shorter_than_the_wait_is_refused() -> None:
    stack = Stack(App(), "S")
    fn = lambda_.Function.from_function_arn(stack, "F", "arn:aws:lambda:us-east-1:123456789012:function:f")
    with pytest.raises(ValueError, match=r"execution_timeout: 360 min must be at least the extraction timeout plus 120 min \(1560 min\)"):
        DataPrepWorkflow(
            stack, "W", key=kms.Key(stack, "K"), validate=fn, extract_start=fn, enrich=fn, custom_step=fn, publish=fn,
            quarantine=fn, extraction_timeout=Duration.minutes(1440), execution_timeout=Duration.hours(6),
        )
