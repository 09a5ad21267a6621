"""Every identity-policy statement names resources the way IAM can match them.

IAM action data from policy-sentry (shipped offline with the package): an action that takes no
resource-level permission only matches ``"*"`` (``ssm:DescribeParameters`` on a parameter ARN
never matches), and an action that takes resource ARNs is not granted on ``"*"`` unless a
condition scopes the statement or the action is listed below with the reason it needs ``"*"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import pytest

from tests.iam_contract.policy import matches
from tests.iam_contract.templates import Assembly, synthesize

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("iam-resource-types")]

# Actions with resource types that are nevertheless granted on "*", each with its reason.
_ENI = ("Lambda and SageMaker create and delete the ENIs of VPC functions and jobs at run time, with ids "
        "unknown at deploy time; AWS's own AWSLambdaVPCAccessExecutionRole grants these on \"*\".")
STAR_BY_NECESSITY = {
    "ec2:CreateNetworkInterface": _ENI,
    "ec2:DeleteNetworkInterface": _ENI,
    "ec2:AssignPrivateIpAddresses": _ENI,
    "ec2:UnassignPrivateIpAddresses": _ENI,
    "ec2:DeleteNetworkInterfacePermission": _ENI,
    "comprehend:DetectEntities": "Its only resource type is a custom entity-recognizer endpoint; the built-in model "
                                 "the platform calls has no ARN, so IAM evaluates the request against \"*\".",
}
# Actions policy-sentry lists without resource types that IAM nevertheless evaluates against a
# resource, so a scoped grant does match.
SCOPED_BY_EVIDENCE = {
    "states:SendTaskSuccess": "IAM evaluates task-token callbacks against the state machine that issued the token "
                              "(AccessDenied messages name it; aws-cdk PR 8486 tested it), so the grant stays scoped.",
    "states:SendTaskFailure": "As states:SendTaskSuccess.",
    "states:SendTaskHeartbeat": "As states:SendTaskSuccess.",
}


@lru_cache(maxsize=None)
def resource_formats(action: str) -> tuple[str, ...] | None:
    """The ARN formats IAM accepts for ``action`` ("*" alone: no resource-level permission); None if unknown."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    rows = (get_action_data(service, name) or {}).get(service, [])
    return tuple(sorted({r["resource_arn_format"] for r in rows})) or None


@lru_cache(maxsize=None)
def expand(action: str) -> tuple[str, ...]:
    if "*" not in action and "?" not in action:
        return (action,)
    from policy_sentry.querying.actions import get_actions_for_service

    service = action.split(":", 1)[0]
    return tuple(a for a in get_actions_for_service(service) if matches(action, a, case_sensitive=False))


def identity_statements(assembly: Assembly) -> Iterator[tuple[str, str, dict]]:
    """(template, policy logical id, statement) for every identity-policy statement."""
    for template in assembly:
        for logical_id, resource in template.resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", []) or []]
            elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents = [resource["Properties"]["PolicyDocument"]]
            else:
                continue
            for document in documents:
                for statement in document["Statement"]:
                    yield template.name, logical_id, statement


def findings(assemblies: dict[str, Assembly]) -> tuple[list[str], int]:
    problems: list[str] = []
    checked = 0
    for assembly in assemblies.values():
        for stack, policy, statement in identity_statements(assembly):
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            where = f"{stack}/{policy} statement {statement.get('Sid') or actions}"
            for granted in actions:
                for action in expand(granted):
                    formats = resource_formats(action)
                    checked += 1
                    if formats is None:
                        problems.append(f"{where}: {action} is not an IAM action policy-sentry knows")
                    elif formats == ("*",) and resources != ["*"] and action not in SCOPED_BY_EVIDENCE:
                        problems.append(f"{where}: {action} takes no resource-level permission, so it must be granted "
                                        f"on \"*\" (a scoped grant never matches)")
                    elif (set(formats) - {"*"} and "*" in resources and action not in STAR_BY_NECESSITY
                          and not statement.get("Condition")):  # a condition scopes "*" (ec2:Subnet, namespaces)
                        problems.append(f"{where}: {action} supports resource ARNs ({', '.join(formats)}) but is "
                                        f"granted on \"*\"")
    return problems, checked


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory) -> dict[str, Assembly]:
    return synthesize(tmp_path_factory.mktemp("resource-types-cdk.out"))


def test_every_action_is_granted_on_resources_iam_can_match(assemblies):
    problems, checked = findings(assemblies)
    assert checked > 500
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_check_flags_both_kinds_of_mistake(assemblies):
    template = next(iter(assemblies["dev"]))
    fake = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "ssm:DescribeParameters", "Resource": "arn:aws:ssm:us-east-1:1:parameter/x"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
    ]}, "Roles": []}}
    template.resources["SelfTestPolicy"] = fake
    try:
        problems, _ = findings({"dev": assemblies["dev"]})
    finally:
        del template.resources["SelfTestPolicy"]
    mine = [p for p in problems if "SelfTestPolicy" in p]
    assert any("ssm:DescribeParameters takes no resource-level permission" in p for p in mine)
    assert any("s3:GetObject supports resource ARNs" in p for p in mine)
    assert len(mine) == 2
