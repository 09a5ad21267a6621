"""cdk-nag wiring: rule packs as policy-validation plugins, and named acknowledgements.

cdk-nag 3 runs as a CDK policy-validation plugin: any unacknowledged finding fails synth.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Stage, Validations
from constructs import IConstruct

from llmops.config import EnvironmentConfig


def add_rule_packs(stage: Stage, env: EnvironmentConfig) -> list[str]:
    """Register AwsSolutions (always) plus the packs the environment switches on."""
    import cdk_nag

    plugins = [cdk_nag.AwsSolutionsChecks(stage)]
    if env.nag_packs.hipaa:
        plugins.append(cdk_nag.HIPAASecurityChecks(stage))
    if env.nag_packs.nist_800_53_r5:
        plugins.append(cdk_nag.NIST80053R5Checks(stage))
    Validations.of(stage).add_plugins(*plugins)
    return [type(p).__name__ for p in plugins]


def add_stack_rule_packs(stack: Stack) -> None:
    """AwsSolutions on a stack outside the environment stages (the delivery pipeline)."""
    import cdk_nag

    Validations.of(stack).add_plugins(cdk_nag.AwsSolutionsChecks(stack))


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one finding (e.g. ``AwsSolutions-IAM5[Resource::*]``) on one construct.

    Whole-rule acknowledgements on a stack are refused: name the finding and the construct.
    """
    if not finding or "-" not in finding:
        raise ValueError(f"finding must be a rule id like 'AwsSolutions-S1', got {finding!r}")
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledgement of {finding} needs a specific reason, got {reason!r}")
    _validations_of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


# jsii object id -> that construct's Validations: one round trip per construct, not per finding
# (synth makes ~530 acknowledgements). Ids are never reused within a jsii kernel process.
_VALIDATIONS: dict[str, Validations] = {}


def _validations_of(construct: IConstruct) -> Validations:
    ref = getattr(getattr(construct, "__jsii_ref__", None), "ref", None)
    if ref is None:
        return Validations.of(construct)
    found = _VALIDATIONS.get(ref)
    if found is None:
        found = _VALIDATIONS[ref] = Validations.of(construct)
    return found


def flatten_reference(node: object) -> str:
    """Flatten a resolved CloudFormation value the way cdk-nag names findings.

    A port of cdk-nag's ``flattenCfnReference``: ``{"Ref": "AWS::Region"}`` -> ``<AWS::Region>``,
    ``Fn::GetAtt`` -> ``<Logical.Attr>``, ``Fn::Join`` joined, ``Fn::Sub`` with ``${x}`` -> ``<x>``.
    """
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(flatten_reference(i) for i in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    import json

    return json.dumps(node, separators=(",", ":"))


def acknowledge_wildcard_resource(principal: IConstruct, resource_arn: str, reason: str) -> None:
    """Acknowledge the IAM5 finding for one wildcard resource ARN granted to ``principal``.

    ``resource_arn`` must be built from literals and pseudo parameters only (no cross-stack
    tokens), so the finding id computed here equals the one cdk-nag reports after synthesis.
    """
    flat = _flatten_pseudo_parameters(resource_arn)
    if flat is None:
        from aws_cdk import Stack

        flat = flatten_reference(Stack.of(principal).resolve(resource_arn))
    if "*" not in flat:
        return
    acknowledge(principal, f"AwsSolutions-IAM5[Resource::{flat}]", reason)


_PSEUDO_TOKENS: dict[str, str] | None = None


def _flatten_pseudo_parameters(value: str) -> str | None:
    """``flatten_reference(Stack.of(x).resolve(value))`` without the round trips, for a string of
    literals and ``Aws.PARTITION``/``REGION``/``ACCOUNT_ID``/``URL_SUFFIX`` only; None for anything else.

    Such a string resolves to a ``Fn::Join`` of its literal pieces and ``Ref``s of those pseudo
    parameters, which ``flatten_reference`` turns back into the pieces and ``<AWS::Name>``.
    """
    global _PSEUDO_TOKENS
    if _PSEUDO_TOKENS is None:
        from aws_cdk import Aws

        _PSEUDO_TOKENS = {Aws.PARTITION: "<AWS::Partition>", Aws.REGION: "<AWS::Region>",
                          Aws.ACCOUNT_ID: "<AWS::AccountId>", Aws.URL_SUFFIX: "<AWS::URLSuffix>"}
    import re

    pieces = re.split("(" + "|".join(map(re.escape, _PSEUDO_TOKENS)) + ")", value)
    literals = pieces[0::2]
    if any("${Token[" in piece for piece in literals):
        return None  # another token (a cross-stack reference, a lazy value): let CDK resolve it
    out = []
    for i, piece in enumerate(pieces):
        out.append(_PSEUDO_TOKENS[piece] if i % 2 else flatten_reference(piece))
    return "".join(out)
