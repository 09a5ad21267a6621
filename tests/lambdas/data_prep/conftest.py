from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.lambdas.data_prep.helpers import ARTIFACTS, DATA, REGION


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto S3 (versioned data and artifacts buckets), DynamoDB jobs table, EventBridge -> SQS."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            for bucket in (DATA, ARTIFACTS):
                s3.create_bucket(Bucket=bucket)
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            ddb = boto3.client("dynamodb", region_name=REGION)
            ddb.create_table(
                TableName="jobs",
                KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            events = boto3.client("events", region_name=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            queue_url = sqs.create_queue(QueueName="quarantine-events")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name="quarantined", EventPattern=json.dumps({"source": ["llmops.dataprep"], "detail-type": ["Document Quarantined"]}))
            events.put_targets(Rule="quarantined", Targets=[{"Id": "q", "Arn": queue_arn}])
            yield {"s3": s3, "dynamodb": ddb, "events": events, "sqs": sqs, "queue_url": queue_url}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


