"""SecureBucket grants: exact actions, prefix-scoped resources, the one wildcard acknowledged."""

from __future__ import annotations

import pytest
from aws_cdk import Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from llmops.constructs.core.secure_bucket import AccessLogBucket, SecureBucket
from llmops.nag import flatten_reference
from tests.helpers import make_app


@pytest.fixture
def bucket_and_role():
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    logs = AccessLogBucket(stack, "Logs", removal_policy=__import__("aws_cdk").RemovalPolicy.DESTROY).bucket
    bucket = SecureBucket(stack, "Data", bucket_name="team-data-bucket", key=key, access_logs=logs,
                          removal_policy=__import__("aws_cdk").RemovalPolicy.DESTROY)
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    return stack, bucket, role


def _statements(template):
    return [s for p in template.find_resources("AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_grant_read_is_prefix_scoped_with_exact_actions(bucket_and_role):
    stack, bucket, role = bucket_and_role
    bucket.grant_read(role, "curated/")
    statements = _statements(Template.from_stack(stack))
    by_action = {tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])): s for s in statements}
    objects = by_action[("s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion")]
    assert flatten_reference(objects["Resource"]) == "arn:<AWS::Partition>:s3:::team-data-bucket/curated/*"
    assert ("s3:ListBucket",) in by_action and ("kms:Decrypt",) in by_action


def test_grant_write_includes_data_key_generation(bucket_and_role):
    stack, bucket, role = bucket_and_role
    bucket.grant_write(role, "quarantine/")
    actions = {a for s in _statements(Template.from_stack(stack)) for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {"s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"} <= actions
    assert not any("*" in a for a in actions)


def test_object_wildcard_acknowledged_on_the_grantee_with_its_exact_finding(bucket_and_role):
    stack, bucket, role = bucket_and_role
    bucket.grant_read(role, "uploads/")
    acks = [e.data for e in role.node.metadata if e.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY]
    ids = [k for a in acks for k in a]
    assert any(i.endswith("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::team-data-bucket/uploads/*]") for i in ids)


@pytest.mark.parametrize("prefix", ["/abs", "../up"])
def test_bad_prefix_is_rejected(bucket_and_role, prefix):
    _, bucket, role = bucket_and_role
    with pytest.raises(ValueError, match="prefix: must be a relative key prefix"):
        bucket.grant_read(role, prefix)


def test_flatten_reference_matches_cdk_nag_format():
    assert flatten_reference({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b/", "*"]]}) == "arn:<AWS::Partition>:s3:::b/*"
    assert flatten_reference({"Fn::GetAtt": ["Bucket1", "Arn"]}) == "<Bucket1.Arn>"
    assert flatten_reference({"Fn::Sub": "arn:${AWS::Partition}:x"}) == "arn:<AWS::Partition>:x"
    assert flatten_reference({"Fn::ImportValue": "exp"}) == "exp"


@pytest.mark.parametrize("arn_of", [
    lambda aws: f"arn:{aws.PARTITION}:s3:::b-{aws.ACCOUNT_ID}-{aws.REGION}/curated/*",
    lambda aws: f"{aws.PARTITION}",
    lambda aws: "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/x:*",
    lambda aws: f"arn:{aws.PARTITION}:iam::{aws.ACCOUNT_ID}:role/${{aws:username}}-*",
    lambda aws: f"https://s3.{aws.URL_SUFFIX}/{aws.PARTITION}{aws.PARTITION}*",
])
def test_pseudo_parameter_flattening_equals_cdk_resolution(arn_of):
    # acknowledge_wildcard_resource flattens these in Python; the finding id must be the one from the template.
    from aws_cdk import Aws

    from llmops.nag import _flatten_pseudo_parameters

    stack = Stack(make_app(), "S", env={"account": "123456789012", "region": "eu-west-1"})
    arn = arn_of(Aws)
    assert _flatten_pseudo_parameters(arn) == flatten_reference(stack.resolve(arn))


def test_other_tokens_are_left_to_cdk_resolution():
    from llmops.nag import _flatten_pseudo_parameters

    stack = Stack(make_app(), "S")
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    assert _flatten_pseudo_parameters(f"{role.role_arn}/*") is None
