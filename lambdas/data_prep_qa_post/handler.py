"""Ground Truth post-annotation (consolidation) Lambda of the custom question-answer task.

Ground Truth passes ``payload.s3Uri``: a JSON list of data objects with every worker's
annotation; the answer is one consolidated annotation per object.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.runtime.data_prep.aws import client
from lambdas.runtime.data_prep.events import PostAnnotation, parse
from lambdas.runtime.data_prep.ground_truth import consolidate_qa

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
    request = parse(PostAnnotation, event, "Ground Truth consolidation request")
    bucket, _, key = request.payload.s3_uri[len("s3://") :].partition("/")
    objects = json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    result = consolidate_qa(request.label_attribute_name, objects)
    logger.info("consolidated", extra={"objects": len(result)})
    return result
