"""PlatformNetwork on an imported VPC: only the endpoints config names, flow logs unless switched off."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from llmops.config import NetworkConfig
from llmops.constructs.core.network import PlatformNetwork
from tests.helpers import make_app

VPC_ID = "vpc-0123456789abcdef0"


def _imported(**fields) -> Template:
    # A context-provider answer for the lookup, as cdk.context.json pins it after the first synth.
    lookup = {
        "vpcId": VPC_ID, "vpcCidrBlock": "10.9.0.0/16", "ownerAccountId": "123456789012", "availabilityZones": [],
        "subnetGroups": [{"name": "isolated", "type": "Isolated", "subnets": [
            {"subnetId": "subnet-0aaa", "cidr": "10.9.0.0/20", "availabilityZone": "us-east-1a", "routeTableId": "rtb-0a"},
            {"subnetId": "subnet-0bbb", "cidr": "10.9.16.0/20", "availabilityZone": "us-east-1b", "routeTableId": "rtb-0b"},
        ]}],
    }
    key = (f"vpc-provider:account=123456789012:filter.vpc-id={VPC_ID}:region=us-east-1:returnAsymmetricSubnets=true")
    app = make_app(**{key: lookup})
    stack = Stack(app, "Net", env={"account": "123456789012", "region": "us-east-1"})
    PlatformNetwork(stack, "Network", config=NetworkConfig(existing_vpc_id=VPC_ID, **fields), key=kms.Key(stack, "Key"))
    return Template.from_stack(stack)


def test_imported_vpc_gets_flow_logs_and_only_the_named_endpoints():
    template = _imported(interface_endpoints=["sagemaker_api", "kms"])
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    template.has_resource_properties("AWS::EC2::FlowLog", {"ResourceId": VPC_ID, "ResourceType": "VPC", "TrafficType": "ALL"})
    template.resource_count_is("AWS::EC2::VPCEndpoint", 2)
    names = sorted(str(e["Properties"]["ServiceName"]) for e in template.find_resources("AWS::EC2::VPCEndpoint").values())
    assert any("sagemaker.api" in n for n in names) and any("kms" in n for n in names)
    template.resource_count_is("AWS::EC2::VPC", 0)


def test_imported_vpc_without_flow_logs_or_endpoints_when_its_owner_has_them():
    template = _imported(interface_endpoints=[], flow_logs=False)
    template.resource_count_is("AWS::EC2::FlowLog", 0)
    template.resource_count_is("AWS::Logs::LogGroup", 0)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
