"""Record an approved model package ARN in SSM Parameter Store.

EventBridge delivers "SageMaker Model Package State Change" events whose ModelApprovalStatus is
Approved; the package's group names the use case, and the ARN is written to that use case's
parameter (``/<name_prefix>/fine-tuning/<use_case>/approved-model-package-arn``), which the
endpoint stack reads. The function creates the parameter on the first approval (CloudFormation
does not own it, so a stack update cannot reset it); readers treat a missing parameter as
"nothing approved yet". Only newer packages overwrite: re-approving an old version after
a newer one must not roll the endpoint back silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

DETAIL_TYPE = "SageMaker Model Package State Change"
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[^/]+)/(?P<version>\d+)$")


def approved_model_parameter_name(name_prefix: str, use_case: str) -> str:
    """The deterministic SSM parameter the endpoint stack reads (shared with the CDK side)."""
    return f"/{name_prefix}/fine-tuning/{use_case}/approved-model-package-arn"


class ApprovalEventError(ValueError):
    """The event is not an approval this function can record; the message says why."""


@dataclass(frozen=True)
class Approval:
    group: str
    arn: str
    version: int
    parameter: str


def parse(event: Mapping[str, Any], parameters_by_group: Mapping[str, str]) -> Approval:
    if event.get("detail-type") != DETAIL_TYPE:
        raise ApprovalEventError(f"detail-type is {event.get('detail-type')!r}, expected {DETAIL_TYPE!r}")
    detail = event.get("detail") or {}
    status = detail.get("ModelApprovalStatus")
    if status != "Approved":
        raise ApprovalEventError(f"ModelApprovalStatus is {status!r}, only Approved packages are recorded")
    arn = detail.get("ModelPackageArn") or ""
    match = _ARN_RE.match(arn)
    if not match:
        raise ApprovalEventError(f"ModelPackageArn {arn!r} is not a versioned model package ARN")
    group = detail.get("ModelPackageGroupName") or match["group"]
    if group not in parameters_by_group:
        raise ApprovalEventError(f"model package group {group!r} is not one of {sorted(parameters_by_group)}")
    return Approval(group=group, arn=arn, version=int(match["version"]), parameter=parameters_by_group[group])


def current_version(ssm: Any, parameter: str) -> int:
    """Version number of the package recorded now (0 when none is)."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return 0
    match = _ARN_RE.match(value)
    return int(match["version"]) if match else 0


def record(event: Mapping[str, Any], ssm: Any, parameters_by_group: Mapping[str, str]) -> dict[str, Any]:
    approval = parse(event, parameters_by_group)
    recorded = current_version(ssm, approval.parameter)
    if approval.version < recorded:
        return {"recorded": False, "reason": f"version {approval.version} is older than recorded version {recorded}",
                "parameter": approval.parameter, "arn": approval.arn}
    ssm.put_parameter(Name=approval.parameter, Value=approval.arn, Type="String", Overwrite=True)
    return {"recorded": True, "parameter": approval.parameter, "arn": approval.arn, "version": approval.version}


def parameters_from_env(raw: str | None) -> dict[str, str]:
    try:
        mapping = json.loads(raw or "")
    except ValueError:
        raise ApprovalEventError("APPROVAL_PARAMETERS must be a JSON object {group: parameter name}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise ApprovalEventError("APPROVAL_PARAMETERS must be a non-empty JSON object {group: parameter name}")
    return {str(k): str(v) for k, v in mapping.items()}
