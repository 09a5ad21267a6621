"""Fixtures for the prompt catalog: a moto DynamoDB table shaped like the CDK construct's."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.prompt_catalog.store import LIST_INDEX, PromptCatalogStore

TABLE = "prompts-test"
BUCKET = "artifacts-test"
REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "LLMOpsTest",
        "POWERTOOLS_SERVICE_NAME": "prompt-tests",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "PROMPT_TABLE_NAME": TABLE,
        "PROMPT_OVERFLOW_BUCKET": BUCKET,
        "PROMPT_OVERFLOW_PREFIX": "prompts/",
    }.items():
        monkeypatch.setenv(name, value)


def create_catalog_table(dynamodb, name: str = TABLE) -> None:
    """The key schema and list index of ``llmops.constructs.prompt_catalog.catalog.PromptCatalog``."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": LIST_INDEX,
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@dataclass
class Catalog:
    dynamodb: object
    s3: object
    # Set by the writer_lambda fixture: stores then create versions through the writer, as deployed.
    version_writer: object = None

    def store(self, **kwargs) -> PromptCatalogStore:
        if self.version_writer is not None:
            kwargs.setdefault("version_writer", self.version_writer())
        kwargs.setdefault("overflow_bucket", BUCKET)
        kwargs.setdefault("dynamodb", self.dynamodb)
        kwargs.setdefault("s3", self.s3)
        return PromptCatalogStore(TABLE, **kwargs)

    def items(self) -> list[dict]:
        return self.dynamodb.scan(TableName=TABLE)["Items"]


@pytest.fixture
def catalog(aws_env):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        create_catalog_table(dynamodb)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield Catalog(dynamodb, s3)


@pytest.fixture
def atomic_moto_writes(monkeypatch):
    """Make moto's single-item writes atomic, as DynamoDB's are.

    moto checks a ConditionExpression and then stores the item in two Python steps with no lock,
    so two threads can both pass the check: a moto artefact, not DynamoDB behaviour. The
    clients under test still race for real (threads, separate boto3 clients, HTTP-level calls).
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, __original=original, **kwargs):
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


TEXT_CONTENT = {
    "kind": "text",
    "technique": "zero-shot",
    "template": "Answer {question} using {context}.",
    "variables": {"question": {"type": "string"}, "context": {"type": "string"}},
    "model_parameters": {"temperature": 0.1, "max_tokens": 256, "stop": ["\n\n"]},
}


WRITER_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:prompt-catalog-writer"


@dataclass
class WriterInvocations:
    """The requests the writer function received (through the Lambda Invoke API)."""

    requests: list[dict]

    def store(self, catalog: Catalog, **kwargs) -> PromptCatalogStore:
        """A store that writes as the deployed API/sync do: versions and metadata through the writer."""
        from lambdas.runtime.prompt_catalog.writer import LambdaVersionWriter

        return catalog.store(version_writer=LambdaVersionWriter(WRITER_ARN, lambda_client=boto3.client("lambda", region_name=REGION)),
                             **kwargs)


@pytest.fixture
def writer_lambda(catalog, monkeypatch):
    """Route Lambda ``Invoke`` of the writer's ARN to ``lambdas/prompt_catalog_writer/handler.py`` in this process.

    moto runs Lambda functions only in Docker, so the request goes through a real boto3 Lambda
    client (serialized payload, the Invoke response shape with a streaming body and
    ``FunctionError`` on an unhandled exception) and the real writer handler answers it, with
    ``PROMPT_VERSION_WRITER`` unset as in the writer's deployed environment.
    """
    import io
    import json as _json

    from botocore.awsrequest import AWSResponse
    from botocore.response import StreamingBody

    from lambdas.prompt_catalog_writer import handler as writer_handler
    from tests.lambdas.context import LambdaContext

    monkeypatch.setenv("PROMPT_VERSION_WRITER", WRITER_ARN)
    requests: list[dict] = []

    def remember(params, context, **_):
        if params.get("FunctionName") == WRITER_ARN:
            context["writer_payload"] = params["Payload"]

    def invoke(context, **_):
        if "writer_payload" not in context:
            return None  # any other function: moto answers
        request = _json.loads(context["writer_payload"])
        requests.append(request)
        saved = os.environ.pop("PROMPT_VERSION_WRITER")
        writer_handler.get_store.cache_clear()
        try:
            body, error = _json.dumps(writer_handler.handler(request, LambdaContext(function_name="prompt-catalog-writer"))), None
        except Exception as exc:  # what Lambda reports for an unhandled exception
            body, error = _json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), "Unhandled"
        finally:
            os.environ["PROMPT_VERSION_WRITER"] = saved
            writer_handler.get_store.cache_clear()
        data = body.encode()
        parsed = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": StreamingBody(io.BytesIO(data), len(data)),
                  "ResponseMetadata": {"HTTPStatusCode": 200}}
        if error:
            parsed["FunctionError"] = error
        return AWSResponse(WRITER_ARN, 200, {}, None), parsed

    boto3.setup_default_session(region_name=REGION)
    from lambdas.runtime.prompt_catalog.writer import LambdaVersionWriter

    catalog.version_writer = lambda: LambdaVersionWriter(WRITER_ARN, lambda_client=boto3.client("lambda", region_name=REGION))
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.lambda.Invoke", remember)
    boto3.DEFAULT_SESSION.events.register("before-call.lambda.Invoke", invoke)
    try:
        yield WriterInvocations(requests)
    finally:
        catalog.version_writer = None
        boto3.DEFAULT_SESSION = None
