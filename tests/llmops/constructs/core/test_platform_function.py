"""PlatformFunction template assertions."""

from __future__ import annotations

import pytest
from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from llmops.config import NetworkConfig
from llmops.constructs.core.lambda_bundle import LambdaBundle
from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from tests.helpers import make_app


@pytest.fixture
def function_template(scratch_repo):
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    network = PlatformNetwork(stack, "Net", config=NetworkConfig(interface_endpoints=("sts",)), key=key)
    fn = PlatformFunction(
        stack, "Hello", entry="hello", key=key, network=network, description="says hello", invoked_by="a unit test",
        environment={"GREETING": "hi"}, memory_size=256,
        bundle=LambdaBundle(entry="hello", runtime_packages=("greeting",), root=scratch_repo),
    )
    return fn, Template.from_stack(stack)


def test_runtime_arch_tracing_and_encryption(function_template):
    _, template = function_template
    template.has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.13",
        "Architectures": ["arm64"],
        "Handler": "lambdas.hello.handler.handler",
        "TracingConfig": {"Mode": "Active"},
        "KmsKeyArn": Match.any_value(),
        "MemorySize": 256,
        "VpcConfig": {"SubnetIds": Match.any_value(), "SecurityGroupIds": Match.any_value()},
        "Environment": {"Variables": Match.object_like({
            "POWERTOOLS_SERVICE_NAME": "hello", "POWERTOOLS_METRICS_NAMESPACE": "LLMOps", "GREETING": "hi"})},
        "LoggingConfig": {"LogGroup": Match.any_value()},
    })
    template.has_resource_properties("AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value(), "RetentionInDays": 90})


def test_role_has_no_managed_policies_and_wildcards_are_isolated(function_template):
    fn, template = function_template
    for role in template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    policies = template.find_resources("AWS::IAM::Policy")
    wildcard = {name: p for name, p in policies.items()
                if any(s["Resource"] == "*" for s in p["Properties"]["PolicyDocument"]["Statement"])}
    assert len(wildcard) == 1
    (name, policy), = wildcard.items()
    actions = sorted(a for s in policy["Properties"]["PolicyDocument"]["Statement"] for a in s["Action"])
    assert actions == sorted([
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"])
    # The function waits for that policy: Lambda checks ENI permissions at create time.
    function = next(iter(template.find_resources("AWS::Lambda::Function").values()))
    assert name in function["DependsOn"]
    # No action anywhere ends in a wildcard.
    for p in policies.values():
        for s in p["Properties"]["PolicyDocument"]["Statement"]:
            for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
                assert "*" not in action


def test_bad_props_name_the_prop(scratch_repo):
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key")
    with pytest.raises(ValueError, match="memory_size: must be 128-10240 MB, got 64"):
        PlatformFunction(stack, "F", entry="hello", key=key, description="d", memory_size=64,
                         bundle=LambdaBundle(entry="hello", root=scratch_repo))
    with pytest.raises(ValueError, match="entry: lambdas/nothing/handler.py does not exist"):
        PlatformFunction(stack, "G", entry="nothing", key=key, description="d")
