"""The custom resource behind ``HumanReview``: a human task UI and a flow definition.

CloudFormation has no resource type for either, and neither can be updated: a change creates a
new pair under names derived from a hash of their content, returns the new physical id, and
CloudFormation's cleanup then sends Delete for the old pair, after the switch.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

NAME_MAX = 63


class FlowError(RuntimeError):
    pass


def names_for(prefix: str, properties: dict[str, Any]) -> tuple[str, str]:
    """``(flow definition name, task UI name)`` from a hash of everything that shapes them."""
    digest = hashlib.sha256(json.dumps(properties, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]
    base = prefix.lower()[: NAME_MAX - 14]
    return f"{base}-flow-{digest}", f"{base}-ui-{digest}"


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") in ("ResourceNotFound", "ValidationException")


def create(sagemaker: Any, props: dict[str, Any], *, wait_seconds: float = 60, sleep=time.sleep) -> dict[str, Any]:
    flow_name, ui_name = names_for(props["Prefix"], {k: v for k, v in props.items() if k != "ServiceToken"})
    ui = sagemaker.create_human_task_ui(HumanTaskUiName=ui_name, UiTemplate={"Content": props["Template"]})
    loop = {
        "WorkteamArn": props["WorkteamArn"],
        "HumanTaskUiArn": ui["HumanTaskUiArn"],
        "TaskTitle": props["TaskTitle"],
        "TaskDescription": props["TaskDescription"],
        "TaskCount": int(props["TaskCount"]),
        "TaskAvailabilityLifetimeInSeconds": int(props["TaskAvailabilitySeconds"]),
        "TaskTimeLimitInSeconds": int(props["TaskTimeLimitSeconds"]),
    }
    flow = sagemaker.create_flow_definition(
        FlowDefinitionName=flow_name,
        HumanLoopConfig=loop,
        OutputConfig={"S3OutputPath": props["OutputPath"], "KmsKeyId": props["KmsKeyArn"]},
        RoleArn=props["RoleArn"],
    )
    deadline = wait_seconds
    while True:  # a loop cannot start until the flow definition is Active
        status = sagemaker.describe_flow_definition(FlowDefinitionName=flow_name)
        if status["FlowDefinitionStatus"] == "Active":
            break
        if status["FlowDefinitionStatus"] == "Failed":
            raise FlowError(f"flow definition {flow_name} failed: {status.get('FailureReason', 'no reason given')}")
        if deadline <= 0:
            raise FlowError(f"flow definition {flow_name} is still {status['FlowDefinitionStatus']} after {wait_seconds:.0f} s")
        sleep(2)
        deadline -= 2
    return {
        "PhysicalResourceId": flow_name,
        "Data": {"FlowDefinitionArn": flow["FlowDefinitionArn"], "HumanTaskUiArn": ui["HumanTaskUiArn"],
                 "FlowDefinitionName": flow_name, "HumanTaskUiName": ui_name},
    }


def delete(sagemaker: Any, physical_id: str) -> dict[str, Any]:
    """Delete the pair a physical id names; a pair already gone is fine."""
    if "-flow-" not in physical_id:
        return {"PhysicalResourceId": physical_id}  # a failed create left no resource behind
    ui_name = physical_id.replace("-flow-", "-ui-", 1)
    for call, kwargs in ((sagemaker.delete_flow_definition, {"FlowDefinitionName": physical_id}),
                         (sagemaker.delete_human_task_ui, {"HumanTaskUiName": ui_name})):
        try:
            call(**kwargs)
        except Exception as exc:
            if not _not_found(exc):
                raise
    return {"PhysicalResourceId": physical_id}


def handle(event: dict[str, Any], sagemaker: Any, **kwargs) -> dict[str, Any]:
    """The provider framework's onEvent: Create, Update (replace when anything changed), Delete."""
    kind = event.get("RequestType")
    props = event.get("ResourceProperties") or {}
    if kind == "Create":
        return create(sagemaker, props, **kwargs)
    if kind == "Update":
        new_name, _ = names_for(props["Prefix"], {k: v for k, v in props.items() if k != "ServiceToken"})
        if new_name == event.get("PhysicalResourceId"):  # only the service token changed
            flow = sagemaker.describe_flow_definition(FlowDefinitionName=new_name)
            ui_name = new_name.replace("-flow-", "-ui-", 1)
            ui = sagemaker.describe_human_task_ui(HumanTaskUiName=ui_name)
            return {"PhysicalResourceId": new_name, "Data": {
                "FlowDefinitionArn": flow["FlowDefinitionArn"], "HumanTaskUiArn": ui["HumanTaskUiArn"],
                "FlowDefinitionName": new_name, "HumanTaskUiName": ui_name}}
        return create(sagemaker, props, **kwargs)  # CloudFormation deletes the old pair after the switch
    if kind == "Delete":
        return delete(sagemaker, event.get("PhysicalResourceId", ""))
    raise FlowError(f"RequestType: unknown {kind!r}")
