"""Cross-account model promotion by copy (``environments.<name>.delivery.model_promotion: copy``).

Where an environment must not read the source registry at deploy (isolation), a pipeline step
run with the target account's delivery role: describes the release's package in the source
account (its group policy lets the target account describe it), copies every artifact the
package's containers name into ``s3://<target artifacts>/promoted/<source account>/<group>/<version>/``
(re-encrypted with the target key), registers a package in the target's group with the copied
artifacts and the same images, approved, tagged with the source ARN, and writes the copy's ARN to
the SSM parameter the target's endpoint template reads (named after the source ARN, so a stale
copy is never deployed). Idempotent: a package already copied from the same ARN is reused.
"""

from __future__ import annotations

import hashlib
from typing import Any

PROMOTED_PREFIX = "promoted/"
# Where fine-tuning runs write model artifacts in the source account (llmops.stacks.fine_tuning.RUNS_PREFIX).
SOURCE_RUNS_PREFIX = "fine-tuning/"
# The roles of a reading account that read those artifacts: endpoint execution roles (generated names
# start with their stack's, <name_prefix>-inference-) and the copy step's <name_prefix>-delivery-promote.
READER_ROLE_PATTERNS = ("*-inference-*", "*-delivery-promote")
SOURCE_ARN_PROPERTY = "llmops:source-model-package-arn"


class ModelCopyError(RuntimeError):
    """The package cannot be copied; the message names the package and what is missing."""


def copied_package_parameter(name_prefix: str, use_case: str, source_arn: str) -> str:
    """The SSM parameter holding this account's copy of ``source_arn`` (shared by synth and the step)."""
    digest = hashlib.sha256(source_arn.encode("utf-8")).hexdigest()[:12]
    return f"/{name_prefix}/delivery/{use_case}/promoted-model-package-{digest}"


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ModelCopyError(f"{uri!r}: not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _copy_prefix(source_s3: Any, target_s3: Any, uri: str, target_bucket: str, target_prefix: str, kms_key: str | None) -> str:
    """Copy one object or every object under a prefix; the copy's URI of the same shape."""
    bucket, key = _split(uri)
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    if key.endswith("/") or not key:
        paginator = source_s3.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                rel = item["Key"][len(key):]
                target_s3.copy({"Bucket": bucket, "Key": item["Key"]}, target_bucket, f"{target_prefix}{rel}",
                               ExtraArgs=extra, SourceClient=source_s3)
                count += 1
        if count == 0:
            raise ModelCopyError(f"{uri}: no objects under the package's model data prefix")
        return f"s3://{target_bucket}/{target_prefix}"
    name = key.rsplit("/", 1)[-1]
    target_s3.copy({"Bucket": bucket, "Key": key}, target_bucket, f"{target_prefix}{name}", ExtraArgs=extra, SourceClient=source_s3)
    return f"s3://{target_bucket}/{target_prefix}{name}"


def _existing_copy(target_sm: Any, group: str, source_arn: str) -> str | None:
    paginator = target_sm.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                   SortBy="CreationTime", SortOrder="Descending"):
        for summary in page.get("ModelPackageSummaryList", []):
            described = target_sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if (described.get("CustomerMetadataProperties") or {}).get(SOURCE_ARN_PROPERTY) == source_arn:
                return summary["ModelPackageArn"]
    return None


def copy_model_package(
    *,
    source_arn: str,
    source_sagemaker: Any,
    source_s3: Any,
    target_sagemaker: Any,
    target_s3: Any,
    target_ssm: Any,
    target_group: str,
    target_bucket: str,
    parameter_name: str,
    kms_key: str | None = None,
) -> tuple[str, bool]:
    """(this account's package ARN, created). Raises ``ModelCopyError`` naming what is wrong."""
    described = source_sagemaker.describe_model_package(ModelPackageName=source_arn)
    if described.get("ModelApprovalStatus") != "Approved":
        raise ModelCopyError(f"{source_arn}: is {described.get('ModelApprovalStatus')}, not Approved; the release pins only approved packages")
    existing = _existing_copy(target_sagemaker, target_group, source_arn)
    if existing is None:
        spec = described.get("InferenceSpecification") or {}
        containers = spec.get("Containers") or []
        if not containers:
            raise ModelCopyError(f"{source_arn}: the package has no inference containers to copy")
        account = source_arn.split(":")[4]
        group, version = source_arn.rsplit("/", 2)[-2:]
        base = f"{PROMOTED_PREFIX}{account}/{group}/{version}/"
        copied = []
        for index, container in enumerate(containers):
            out = {k: container[k] for k in ("Image", "Environment", "Framework", "FrameworkVersion", "NearestModelName")
                   if k in container}
            prefix = f"{base}container-{index}/"
            if container.get("ModelDataUrl"):
                out["ModelDataUrl"] = _copy_prefix(source_s3, target_s3, container["ModelDataUrl"], target_bucket, prefix, kms_key)
            source = (container.get("ModelDataSource") or {}).get("S3DataSource")
            if source:
                out["ModelDataSource"] = {"S3DataSource": {
                    **source, "S3Uri": _copy_prefix(source_s3, target_s3, source["S3Uri"], target_bucket, prefix, kms_key)}}
            copied.append(out)
        new_spec = {"Containers": copied}
        for key in ("SupportedContentTypes", "SupportedResponseMIMETypes", "SupportedRealtimeInferenceInstanceTypes",
                    "SupportedTransformInstanceTypes"):
            if key in spec:
                new_spec[key] = spec[key]
        request: dict[str, Any] = {
            "ModelPackageGroupName": target_group,
            "ModelPackageDescription": f"Copy of {source_arn}"[:1024],
            "InferenceSpecification": new_spec,
            "ModelApprovalStatus": "Approved",
            "CustomerMetadataProperties": {**(described.get("CustomerMetadataProperties") or {}), SOURCE_ARN_PROPERTY: source_arn},
        }
        existing = target_sagemaker.create_model_package(**request)["ModelPackageArn"]
        created = True
    else:
        created = False
    target_ssm.put_parameter(Name=parameter_name, Value=existing, Type="String", Overwrite=True,
                             Description=f"copy of {source_arn}"[:1024])
    return existing, created
