"""Every template passes the checks a CloudFormation security scanner runs, or says why not.

Per class (function concurrency, asynchronous failures, functions in the VPC, unconstrained
writes, ENI permissions, Aurora enhanced monitoring, API caching, bucket access logging): the
resource follows the rule, or its Metadata carries a checkov/cfn_nag skip for exactly that check
with a specific reason (llmops/constructs/core/scanner.py), never a blanket exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import pytest

from llmops.constructs.core.scanner import CHECKS
from tests.iam_contract.templates import Assembly, Template, synthesize

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("scanner-defaults")]

ASYNC_PRINCIPALS = {"events.amazonaws.com", "sns.amazonaws.com", "s3.amazonaws.com", "logs.amazonaws.com"}
WRITE_LEVELS = {"Write", "Permissions management", "Tagging"}


def skip_reason(resource: dict[str, Any], check: str) -> str | None:
    checkov_id = CHECKS[check][0]
    for skip in (resource.get("Metadata", {}).get("checkov") or {}).get("skip", []):
        if skip.get("id") == checkov_id:
            return skip.get("comment", "")
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _refers_to(value: Any, logical_id: str) -> bool:
    text = json.dumps(value)
    return f'"Ref": "{logical_id}"' in text or f'["{logical_id}", "Arn"]' in text


def async_invoked(template: Template, function_id: str) -> list[str]:
    """Who may invoke ``function_id`` asynchronously: service permissions, SNS subscriptions, CloudFormation."""
    callers = []
    for _, resource in template.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Permission" and _refers_to(props.get("FunctionName"), function_id):
            if props.get("Principal") in ASYNC_PRINCIPALS:
                callers.append(props["Principal"])
        elif resource["Type"] == "AWS::SNS::Subscription" and props.get("Protocol") == "lambda" and _refers_to(props.get("Endpoint"), function_id):
            callers.append("sns subscription")
        elif (resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource") \
                and _refers_to(props.get("ServiceToken"), function_id):
            callers.append("cloudformation custom resource")
    return sorted(set(callers))


def has_on_failure(template: Template, function_id: str, props: dict[str, Any]) -> bool:
    if props.get("DeadLetterConfig", {}).get("TargetArn"):
        return True
    for _, resource in template.of_type("AWS::Lambda::EventInvokeConfig"):
        p = resource["Properties"]
        if _refers_to(p.get("FunctionName"), function_id) and p.get("DestinationConfig", {}).get("OnFailure"):
            return True
    return False


@lru_cache(maxsize=None)
def access_level(action: str) -> str | None:
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    rows = (get_action_data(service, name) or {}).get(service, [])
    return rows[0]["access_level"] if rows else None


def _expand(action: str) -> list[str]:
    from tests.test_iam_resource_types import expand

    return list(expand(action))


def policy_documents(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if resource["Type"] == "AWS::IAM::Role":
        yield from (p["PolicyDocument"] for p in resource["Properties"].get("Policies", []) or [])
    elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield resource["Properties"]["PolicyDocument"]


def findings(assemblies: dict[str, Assembly]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {c: [] for c in ("concurrency", "dead-letter", "vpc", "unconstrained-write", "eni",
                                                   "monitoring", "api-cache", "bucket-logging", "reasons")}
    for stage, assembly in assemblies.items():
        for template in assembly:
            for lid, resource in template.resources.items():
                where = f"{stage}/{template.name}/{lid}"
                props = resource.get("Properties", {})
                for tool in ("checkov",):
                    for skip in (resource.get("Metadata", {}).get(tool) or {}).get("skip", []):
                        if skip.get("id") not in {c[0] for c in CHECKS.values()} or len(skip.get("comment", "")) < 20:
                            found["reasons"].append(f"{where}: skip {skip} has no known check id or no specific reason")
                cfn_type = resource["Type"]
                if cfn_type == "AWS::Lambda::Function":
                    if not props.get("ReservedConcurrentExecutions") and skip_reason(resource, "concurrency") is None:
                        found["concurrency"].append(f"{where}: no reserved concurrency")
                    if not props.get("VpcConfig") and skip_reason(resource, "vpc") is None:
                        found["vpc"].append(f"{where}: not in the VPC")
                    callers = async_invoked(template, lid)
                    if callers and not has_on_failure(template, lid, props):
                        found["dead-letter"].append(f"{where}: invoked asynchronously by {callers} without a DLQ or on-failure destination")
                    if not callers and not has_on_failure(template, lid, props) and skip_reason(resource, "dead-letter") is None:
                        found["dead-letter"].append(f"{where}: no DLQ and no recorded reason it needs none")
                for document in policy_documents(resource):
                    for statement in _list(document.get("Statement", [])):
                        if statement.get("Effect") != "Allow" or "*" not in _list(statement.get("Resource")):
                            continue
                        actions = [x for a in _list(statement.get("Action", [])) for x in _expand(a)]
                        if "ec2:CreateNetworkInterfacePermission" in actions:
                            condition = json.dumps(statement.get("Condition", {}))
                            if "ec2:AuthorizedService" not in condition or "ec2:Subnet" not in condition:
                                found["eni"].append(f"{where}: ec2:CreateNetworkInterfacePermission on * without "
                                                    "ec2:AuthorizedService and ec2:Subnet conditions")
                        writes = sorted(a for a in actions if access_level(a) in WRITE_LEVELS)
                        if writes and not statement.get("Condition") and skip_reason(resource, "unconstrained-write") is None:
                            found["unconstrained-write"].append(f"{where}: {writes} on * without a condition or a recorded reason")
                if cfn_type == "AWS::RDS::DBInstance" and str(props.get("Engine", "")).startswith("aurora"):
                    if not props.get("MonitoringInterval"):
                        found["monitoring"].append(f"{where}: Aurora instance without enhanced monitoring")
                if cfn_type == "AWS::ApiGateway::Stage":
                    if not props.get("CacheClusterEnabled") and skip_reason(resource, "api-cache") is None:
                        found["api-cache"].append(f"{where}: stage without caching or a recorded reason")
                if cfn_type == "AWS::S3::Bucket":
                    if not props.get("LoggingConfiguration") and skip_reason(resource, "bucket-logging") is None:
                        found["bucket-logging"].append(f"{where}: bucket without access logging or a recorded reason")
    return found


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory) -> dict[str, Assembly]:
    return synthesize(tmp_path_factory.mktemp("scanner-cdk.out"))


@pytest.fixture(scope="module")
def found(assemblies) -> dict[str, list[str]]:
    return findings(assemblies)


@pytest.mark.parametrize("check", ["concurrency", "dead-letter", "vpc", "unconstrained-write", "eni", "monitoring",
                                   "api-cache", "bucket-logging", "reasons"])
def test_every_template_follows_the_scanner_class_or_records_why(found, check):
    assert found[check] == [], "\n".join(found[check])


def test_reserved_concurrency_comes_from_config(assemblies):
    from llmops.config import parse_config
    from tests.helpers import raw_config

    functions = parse_config(raw_config()).get("dev").functions
    seen = {}
    for template in assemblies["dev"]:
        for _, resource in template.of_type("AWS::Lambda::Function"):
            handler = resource["Properties"].get("Handler", "")
            if handler.startswith("lambdas."):
                seen[handler.split(".")[1]] = resource["Properties"]["ReservedConcurrentExecutions"]
    assert seen and all(limit == functions.reserved_for(name) for name, limit in seen.items())
    assert seen["rag_query"] == functions.reserved_for("rag_query") != functions.reserved_for("data_prep_validate")


def test_the_walk_flags_each_class(assemblies):
    template = next(t for t in assemblies["dev"] if t.name.endswith("data-prep"))
    bad = {
        "BadFunction": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "x.handler"}},
        "BadPermission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Fn::GetAtt": ["BadFunction", "Arn"]}, "Principal": "events.amazonaws.com"}},
        "BadPolicy": {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [], "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": ["ec2:CreateNetworkInterfacePermission", "sqs:SendMessage"], "Resource": "*"}]}}},
        "BadDb": {"Type": "AWS::RDS::DBInstance", "Properties": {"Engine": "aurora-postgresql"}},
        "BadStage": {"Type": "AWS::ApiGateway::Stage", "Properties": {}},
        "BadBucket": {"Type": "AWS::S3::Bucket", "Properties": {}, "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "x"}]}}},
    }
    template.resources.update(bad)
    try:
        result = findings({"dev": assemblies["dev"]})
    finally:
        for key in bad:
            del template.resources[key]
    mine = {check: [f for f in items if "/Bad" in f] for check, items in result.items()}
    for check in ("concurrency", "dead-letter", "vpc", "unconstrained-write", "eni", "monitoring", "api-cache", "reasons"):
        assert mine[check], check
    assert "invoked asynchronously by ['events.amazonaws.com']" in mine["dead-letter"][0]
