"""EventBridge (S3 Object Created under the review output prefix) -> reviewed interaction -> datasets and metrics."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.data_prep.datasets import publish_dataset_version
from lambdas.runtime.human_review.results import (
    InvalidReviewOutput, evaluation_records, fine_tuning_pairs, parse_review_output, review_metrics,
)

logger = Logger()
metrics = Metrics()


@cache
def s3():
    return boto3.client("s3")


def _quarantine(bucket: str, key: str, reason: str) -> str:
    target = f"quarantine/reviews/{key.rsplit('/', 2)[-2]}.reason.json"
    s3().put_object(Bucket=bucket, Key=target, Body=json.dumps({"source": key, "reason": reason}).encode(),
                    ContentType="application/json")
    return target


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = (detail.get("object") or {}).get("key")
    if not bucket or not key:
        raise ValueError("event: not an S3 Object Created event (detail.bucket.name / detail.object.key missing)")
    if bucket != os.environ["DATA_BUCKET"]:
        raise ValueError(f"event: bucket {bucket!r} is not the platform's data bucket {os.environ['DATA_BUCKET']!r}")
    if not key.endswith("/output.json"):
        return {"skipped": key}
    body = s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        review = parse_review_output(body)
    except InvalidReviewOutput as err:
        target = _quarantine(bucket, key, str(err))
        metrics.add_metric(name="ReviewOutputsQuarantined", unit=MetricUnit.Count, value=1)
        logger.warning("review output quarantined", extra={"key": key, "reason": str(err), "quarantine": target})
        return {"quarantined": target, "reason": str(err)}
    result: dict[str, Any] = {"loop": review.loop_name}
    pairs = fine_tuning_pairs([review])
    if pairs:
        version = publish_dataset_version(s3(), bucket, dataset=os.environ["REVIEW_DATASET"], fmt="instruction",
                                          records=pairs, sources=[f"s3://{bucket}/{key}"])
        result["dataset_version"] = version.version
    evaluation = evaluation_records([review])
    s3().put_object(Bucket=bucket, Key=f"{os.environ['EVALUATION_PREFIX']}{review.loop_name}.json",
                    Body=json.dumps(evaluation[0], ensure_ascii=False).encode("utf-8"), ContentType="application/json")
    for (prompt, model), values in review_metrics([review]).items():
        single = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LLMOps"))
        single.add_dimension(name="PromptVersion", value=prompt)
        single.add_dimension(name="Model", value=model)
        for name, value in values.items():
            single.add_metric(name=name, unit=MetricUnit.Count if name == "ReviewCount" else MetricUnit.NoUnit, value=value)
        single.flush_metrics()
    logger.info("review ingested", extra=result)
    return result
