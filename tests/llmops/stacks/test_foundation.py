"""FoundationStack template assertions: key, buckets, network, tags, removal policies."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from tests.helpers import synth_stage, template_of


@pytest.fixture(scope="module")
def dev():
    return template_of(synth_stage("dev").foundation)


@pytest.fixture(scope="module")
def prod():
    return template_of(synth_stage("prod").foundation)


def test_key_rotates_and_is_kept(dev):
    dev.resource_count_is("AWS::KMS::Key", 1)
    dev.has_resource("AWS::KMS::Key", {
        "Properties": {"EnableKeyRotation": True, "RotationPeriodInDays": 365},
        "DeletionPolicy": "Retain",
    })
    dev.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/llmops-dev/platform"})


def test_key_lets_only_this_accounts_log_groups_use_it(dev):
    key = next(iter(dev.find_resources("AWS::KMS::Key").values()))
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    logs = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    assert len(logs) == 1
    assert "kms:EncryptionContext:aws:logs:arn" in logs[0]["Condition"]["ArnLike"]


def test_data_buckets_are_private_encrypted_versioned_logged(dev):
    buckets = dev.find_resources("AWS::S3::Bucket", {"Properties": {"BucketEncryption": {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]}}})
    assert len(buckets) == 2  # artifacts and data
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert "DestinationBucketName" in props["LoggingConfiguration"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]


def test_every_bucket_enforces_ssl(dev):
    policies = dev.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_data_bucket_sends_events_to_eventbridge_without_a_custom_resource(dev):
    dev.has_resource_properties("AWS::S3::Bucket", {
        "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}})
    dev.resource_count_is("AWS::Lambda::Function", 0)
    dev.resource_count_is("Custom::S3BucketNotifications", 0)


def test_bucket_names_are_derivable_from_config(dev):
    dev.has_resource_properties("AWS::S3::Bucket", {
        "BucketName": {"Fn::Join": ["", ["llmops-dev-data-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}})


def test_removal_policy_follows_environment(dev, prod):
    for bucket in dev.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    for bucket in prod.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
    assert synth_stage("prod").foundation.termination_protection is True
    assert synth_stage("dev").foundation.termination_protection is False


def test_network_is_isolated_with_endpoints_and_flow_logs(dev, prod):
    dev.resource_count_is("AWS::EC2::InternetGateway", 0)
    dev.resource_count_is("AWS::EC2::NatGateway", 0)
    dev.resource_count_is("AWS::EC2::Subnet", 2)
    prod.resource_count_is("AWS::EC2::Subnet", 3)
    dev.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"})
    dev.has_resource_properties("AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value()})
    gateways = dev.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}})
    assert len(gateways) == 2
    interfaces = prod.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    services = {str(e["Properties"]["ServiceName"]) for e in interfaces.values()}
    for name in ("sagemaker.api", "sagemaker.runtime", ".sts", ".logs", ".kms", "ecr.api", "ecr.dkr"):
        assert any(name in s for s in services), name
    for endpoint in interfaces.values():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_endpoint_security_group_admits_only_https_from_the_vpc(dev):
    dev.has_resource_properties("AWS::EC2::SecurityGroup", {
        "GroupDescription": "HTTPS from inside the VPC to interface endpoints",
        "SecurityGroupIngress": [{"CidrIp": "10.40.0.0/16", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp", "Description": "HTTPS from the VPC"}],
    })


def test_azs_come_from_getazs_not_a_lookup(prod):
    subnets = prod.find_resources("AWS::EC2::Subnet")
    for subnet in subnets.values():
        assert "Fn::Select" in subnet["Properties"]["AvailabilityZone"]


def test_every_resource_is_tagged(dev):
    dev.has_resource_properties("AWS::S3::Bucket", {"Tags": Match.array_with([
        {"Key": "cost-centre", "Value": "ml-platform"}, {"Key": "environment", "Value": "dev"},
        {"Key": "owner", "Value": "platform-team"}, {"Key": "project", "Value": "llmops"}])})
    dev.has_resource_properties("AWS::EC2::VPC", {"Tags": Match.array_with([{"Key": "environment", "Value": "dev"}])})


def test_configured_endpoints_only(tmp_path):
    stage = synth_stage("dev", {"network": {"interface_endpoints": ["sts"]}, "capabilities": {
        "data_prep": False, "prompt_catalog": False, "rag": False, "fine_tuning": False, "human_review": False}})
    template = template_of(stage.foundation)
    assert len(template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})) == 1
