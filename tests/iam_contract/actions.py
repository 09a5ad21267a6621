"""Botocore operations -> the IAM actions and resource ARNs they need.

The default is ``<signing name>:<operation>``; the table below holds the operations whose action
differs (S3 HeadObject is authorized as s3:GetObject, Bedrock Converse as bedrock:InvokeModel, ...)
and the builders turn request parameters into the resource ARN IAM evaluates. ``rename`` maps a
name the test used (bucket, table, queue...) onto the name the deployed function is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

ANY = "*"  # the action takes no resource-level permission (or the resource is unknown)

Rename = Callable[[str, str], str]


@dataclass(frozen=True)
class Required:
    action: str
    resource: str
    why: str  # the operation that needs it


# (service, operation) -> IAM action names (without prefix) when they differ from the operation.
ACTION_EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "HeadObject"): ("GetObject",),
    ("s3", "ListObjectsV2"): ("ListBucket",),
    ("s3", "ListObjects"): ("ListBucket",),
    ("s3", "HeadBucket"): ("ListBucket",),
    ("s3", "ListObjectVersions"): ("ListBucketVersions",),
    ("s3", "CreateMultipartUpload"): ("PutObject",),
    ("s3", "UploadPart"): ("PutObject",),
    ("s3", "CompleteMultipartUpload"): ("PutObject",),
    ("s3", "AbortMultipartUpload"): ("AbortMultipartUpload",),
    ("bedrock-runtime", "Converse"): ("InvokeModel",),
    ("bedrock-runtime", "ConverseStream"): ("InvokeModelWithResponseStream",),
    ("sagemaker-runtime", "InvokeEndpointWithResponseStream"): ("InvokeEndpointWithResponseStream",),
    ("lambda", "Invoke"): ("InvokeFunction",),
    # The batch operations are authorized as their single-message actions.
    ("sqs", "SendMessageBatch"): ("SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("ChangeMessageVisibility",),
}
# Signing names that differ from the IAM service prefix (CloudWatch signs as "monitoring").
IAM_PREFIX = {"monitoring": "cloudwatch"}


def required(call: dict[str, Any], *, region: str, account: str, rename: Rename) -> list[Required]:
    """What ``call`` (a recorder line) needs from the role of the function that made it."""
    service, operation, params = call["service"], call["operation"], call["params"]
    prefix = IAM_PREFIX.get(call["signing_name"], call["signing_name"])
    why = f"{service}.{operation}"
    names = ACTION_EXCEPTIONS.get((service, operation), (operation,))
    head = "arn:aws"

    def need(action: str, resource: str, p: str = prefix) -> Required:
        return Required(f"{p}:{action}", resource, why)

    if service == "s3":
        return _s3(operation, params, names, rename, why)
    if service == "dynamodb":
        return _dynamodb(operation, params, region, account, rename, why)
    if service == "sqs":
        url = rename("sqs-queue-url", params.get("QueueUrl", ""))
        name = urlparse(url).path.rsplit("/", 1)[-1] if url else ANY
        return [need(n, f"{head}:sqs:{region}:{account}:{name}") for n in names]
    if service == "sns":
        topic = rename("sns-topic", params.get("TopicArn", "")) or ANY
        return [need(n, topic) for n in names]
    if service == "events" and operation == "PutEvents":
        buses = {rename("event-bus", e.get("EventBusName", "default")) for e in params.get("Entries", [])} or {"default"}
        return [need("PutEvents", b if b.startswith("arn:") else f"{head}:events:{region}:{account}:event-bus/{b}")
                for b in sorted(buses)]
    if service == "ssm" and "Name" in params:
        name = rename("ssm-parameter", params["Name"])
        return [need(n, f"{head}:ssm:{region}:{account}:parameter/{name.lstrip('/')}") for n in names]
    if service == "secretsmanager" and "SecretId" in params:
        secret = rename("secret", params["SecretId"])
        # A full ARN carries the random suffix; a bare name stands for "<name>-" and six characters.
        arn = secret if secret.startswith("arn:") else f"{head}:secretsmanager:{region}:{account}:secret:{secret}-??????"
        return [need(n, arn) for n in names]
    if service in ("sagemaker-runtime",) and "EndpointName" in params:
        name = rename("sagemaker-endpoint", params["EndpointName"]).lower()
        return [need(n, f"{head}:sagemaker:{region}:{account}:endpoint/{name}") for n in names]
    if service == "bedrock-runtime" and "modelId" in params:
        model = rename("bedrock-model", params["modelId"])
        arn = model if model.startswith("arn:") else f"{head}:bedrock:{region}::foundation-model/{model}"
        return [need(n, arn) for n in names]
    if service == "kendra" and "IndexId" in params:
        index = rename("kendra-index", params["IndexId"])
        return [need(n, f"{head}:kendra:{region}:{account}:index/{index}") for n in names]
    if service == "lambda" and "FunctionName" in params:
        function = rename("lambda-function", params["FunctionName"])
        arn = function if function.startswith("arn:") else f"{head}:lambda:{region}:{account}:function:{function}"
        return [need(n, arn) for n in names]
    if service == "sagemaker":
        return _sagemaker(operation, params, region, account, rename, why)
    if service == "stepfunctions":
        return [need(n, ANY) for n in names]  # SendTask* are authorized on the task token alone
    return [need(n, ANY) for n in names]


def _s3(operation: str, params: dict[str, Any], names: tuple[str, ...], rename: Rename, why: str) -> list[Required]:
    bucket = rename("s3-bucket", params.get("Bucket", ""))
    key = params.get("Key")
    out: list[Required] = []
    if operation == "CopyObject":
        source = params.get("CopySource")
        if isinstance(source, str):
            src_bucket, _, src_key = source.lstrip("/").partition("/")
            src_key = src_key.split("?versionId=")[0]
            versioned = "?versionId=" in source
        else:
            src_bucket, src_key, versioned = source.get("Bucket", ""), source.get("Key", ""), bool(source.get("VersionId"))
        src_bucket = rename("s3-bucket", src_bucket)
        out.append(Required("s3:GetObjectVersion" if versioned else "s3:GetObject", f"arn:aws:s3:::{src_bucket}/{src_key}", why))
        out.append(Required("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", why))
        if params.get("TaggingDirective") == "REPLACE" or params.get("Tagging"):
            out.append(Required("s3:PutObjectTagging", f"arn:aws:s3:::{bucket}/{key}", why))
        return out
    for name in names:
        if name in ("ListBucket", "ListBucketVersions"):
            out.append(Required(f"s3:{name}", f"arn:aws:s3:::{bucket}", why))
            continue
        if name == "GetObject" and params.get("VersionId"):
            name = "GetObjectVersion"
        if name == "DeleteObject" and params.get("VersionId"):
            name = "DeleteObjectVersion"
        out.append(Required(f"s3:{name}", f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}", why))
    if operation in ("PutObject", "CreateMultipartUpload") and params.get("Tagging"):
        out.append(Required("s3:PutObjectTagging", f"arn:aws:s3:::{bucket}/{key}", why))
    return out


def _dynamodb(operation: str, params: dict[str, Any], region: str, account: str, rename: Rename, why: str) -> list[Required]:
    def table_arn(name: str, index: str | None = None) -> str:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{rename('dynamodb-table', name)}"
        return f"{arn}/index/{index}" if index else arn

    if operation == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        return [Required(f"dynamodb:{kinds[k]}", table_arn(v["TableName"]), why)
                for item in params.get("TransactItems", []) for k, v in item.items()]
    if operation == "TransactGetItems":
        return [Required("dynamodb:GetItem", table_arn(i["Get"]["TableName"]), why) for i in params.get("TransactItems", [])]
    if operation == "BatchWriteItem":
        return [Required(f"dynamodb:{'PutItem' if 'PutRequest' in r else 'DeleteItem'}", table_arn(t), why)
                for t, requests in params.get("RequestItems", {}).items() for r in requests]
    if operation == "BatchGetItem":
        return [Required("dynamodb:BatchGetItem", table_arn(t), why) for t in params.get("RequestItems", {})]
    return [Required(f"dynamodb:{operation}", table_arn(params.get("TableName", ""), params.get("IndexName")), why)]


def _sagemaker(operation: str, params: dict[str, Any], region: str, account: str, rename: Rename, why: str) -> list[Required]:
    head = f"arn:aws:sagemaker:{region}:{account}"
    resource_params = {
        "LabelingJobName": "labeling-job", "TrainingJobName": "training-job", "ProcessingJobName": "processing-job",
        "TransformJobName": "transform-job", "EndpointName": "endpoint", "ModelName": "model",
        "ModelPackageGroupName": "model-package-group", "PipelineName": "pipeline",
    }
    out: list[Required] = []
    arn = ANY
    for param, kind in resource_params.items():
        if param in params:
            value = rename(f"sagemaker-{kind}", params[param])
            arn = value if value.startswith("arn:") else f"{head}:{kind}/{value.lower()}"
            break
    if "ModelPackageName" in params:
        value = params["ModelPackageName"]
        arn = value if value.startswith("arn:") else f"{head}:model-package/{value.lower()}"
    out.append(Required(f"sagemaker:{operation}", arn, why))
    if "Tags" in params and operation.startswith("Create"):
        out.append(Required("sagemaker:AddTags", arn, why))
    if "RoleArn" in params:  # a Create/Start that hands a role to the service passes it
        out.append(Required("iam:PassRole", rename("iam-role", params["RoleArn"]), why))
    return out
