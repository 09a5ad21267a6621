"""Ground Truth labeling: start a job (direct invoke) and publish its output (EventBridge).

- Invoke with ``{"action": "start", "job_name", "task_type", "labels", "document_ids", "dataset"}``.
- EventBridge "SageMaker Ground Truth Labeling Job State Change" with status Completed converts
  the output manifest into the next version of the job's dataset.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.data_prep import ground_truth
from lambdas.runtime.data_prep.aws import client
from lambdas.runtime.data_prep.events import InvalidEvent

logger = Logger()
metrics = Metrics()
SETTINGS = ground_truth.LabelingSettings.from_env(dict(os.environ))


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("source") == "aws.sagemaker":
        job_name = ground_truth.labeling_job_name(event)
        result = ground_truth.complete_labeling(job_name, s3=client("s3"), sagemaker=client("sagemaker"), settings=SETTINGS)
        if result.get("published"):
            metrics.add_metric(name="LabeledDatasetVersions", unit=MetricUnit.Count, value=1)
        logger.info("labeling job state change", extra=result)
        return result
    if isinstance(event, dict) and "action" in event:
        result = ground_truth.start_labeling(event, s3=client("s3"), sagemaker=client("sagemaker"), settings=SETTINGS)
        logger.info("labeling job started", extra=result)
        return result
    raise InvalidEvent("expected {'action': 'start', ...} or a SageMaker Ground Truth Labeling Job State Change event")
