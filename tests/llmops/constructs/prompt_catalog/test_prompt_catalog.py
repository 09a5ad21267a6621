"""PromptCatalog construct: table safety defaults, intent-based least-privilege grants, metrics, imports."""

from __future__ import annotations

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from llmops.constructs.prompt_catalog.catalog import (
    ALIAS_ATTRIBUTES,
    LIST_INDEX,
    SYNC_ATTRIBUTES,
    VERSION_ATTRIBUTES,
    PromptCatalog,
)
from llmops.constructs.core.secure_bucket import AccessLogBucket, SecureBucket
from tests.helpers import make_app


def _parts(stack: Stack):
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    logs = AccessLogBucket(stack, "Logs", removal_policy=RemovalPolicy.DESTROY).bucket
    bucket = SecureBucket(stack, "Artifacts", bucket_name="team-artifacts", key=key, access_logs=logs, removal_policy=RemovalPolicy.DESTROY)
    return key, bucket


@pytest.fixture
def stack():
    return Stack(make_app(), "S")


def _catalog(stack, **kwargs):
    key, bucket = _parts(stack)
    return PromptCatalog(stack, "Catalog", key=key, overflow_bucket=bucket, **kwargs), key


def _actions(statement) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def _role_statements(template: Template, stack: Stack, role: iam.Role) -> list[dict]:
    role_id = stack.get_logical_id(role.node.default_child)
    return [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_table_is_cmk_encrypted_recoverable_and_protected(stack):
    catalog, key = _catalog(stack, table_name="team-prompts")
    template = Template.from_stack(stack)
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "TableName": "team-prompts",
                "BillingMode": "PAY_PER_REQUEST",
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": True,
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "GlobalSecondaryIndexes": [Match.object_like({"IndexName": LIST_INDEX})],
            },
            "DeletionPolicy": "Retain",
        },
    )


def test_deletion_protection_and_removal_follow_the_props(stack):
    _catalog(stack, deletion_protection=False, removal_policy=RemovalPolicy.DESTROY)
    Template.from_stack(stack).has_resource("AWS::DynamoDB::Table", {"Properties": {"DeletionProtectionEnabled": False}, "DeletionPolicy": "Delete"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overflow_prefix": "/prompts/"}, "'overflow_prefix' must be a relative key prefix ending in '/'"),
        ({"overflow_prefix": "prompts"}, "'overflow_prefix'"),
        ({"table_name": "a b"}, "'table_name'"),
    ],
)
def test_invalid_props_are_named(stack, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _catalog(stack, **kwargs)


def test_key_and_bucket_are_required(stack):
    key, bucket = _parts(stack)
    with pytest.raises(ValueError, match="'key' is required"):
        PromptCatalog(stack, "A", key=None, overflow_bucket=bucket)
    with pytest.raises(ValueError, match="'overflow_bucket' is required"):
        PromptCatalog(stack, "B", key=key, overflow_bucket=None)


def _role(stack, name):
    return iam.Role(stack, name, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))


def _writer_function(stack: Stack, catalog) -> iam.Role:
    role = _role(stack, "VersionWriter")
    function = lambda_.Function(stack, "WriterFunction", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                                code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"), role=role)
    catalog.add_version_writer(function)
    return role, function


def test_grants_are_least_privilege_by_intent(stack):
    catalog, _ = _catalog(stack)
    version_writer, writer_function = _writer_function(stack, catalog)
    renderer, reader, writer = _role(stack, "Renderer"), _role(stack, "Reader"), _role(stack, "Writer")
    catalog.grant_render(renderer)
    catalog.grant_read(reader)
    catalog.grant_write(writer)
    template = Template.from_stack(stack)
    table_arn = {"Fn::GetAtt": [stack.get_logical_id(catalog.table.node.default_child), "Arn"]}

    def dynamodb_actions(role):
        return {a for s in _role_statements(template, stack, role) for a in _actions(s) if a.startswith("dynamodb:")}

    def all_actions(role):
        return {a for s in _role_statements(template, stack, role) for a in _actions(s)}

    assert dynamodb_actions(renderer) == {"dynamodb:GetItem", "dynamodb:Query"}
    assert dynamodb_actions(reader) == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}
    # A grantee writes no item whole: no PutItem, no BatchWriteItem; versions go through the writer.
    assert dynamodb_actions(writer) == dynamodb_actions(reader) | {"dynamodb:UpdateItem"}
    (update,) = [s for s in _role_statements(template, stack, writer) if "dynamodb:UpdateItem" in _actions(s)]
    names = set(update["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert names == {"pk", "sk"} | set(ALIAS_ATTRIBUTES) | set(SYNC_ATTRIBUTES)
    assert not names & set(VERSION_ATTRIBUTES)  # keys aside (DynamoDB never updates a key), no attribute a version has
    (invoke,) = [s for s in _role_statements(template, stack, writer) if "lambda:InvokeFunction" in _actions(s)]
    assert invoke["Resource"] == {"Fn::GetAtt": [stack.get_logical_id(writer_function.node.default_child), "Arn"]}
    # The version writer alone: conditioned PutItem of version-shaped items and metadata UpdateItem.
    assert dynamodb_actions(version_writer) == dynamodb_actions(reader) | {"dynamodb:PutItem", "dynamodb:UpdateItem"}
    writes = [s for s in _role_statements(template, stack, version_writer) if _actions(s) & {"dynamodb:PutItem", "dynamodb:UpdateItem"}]
    assert len(writes) == 2 and all("dynamodb:Attributes" in s["Condition"]["ForAllValues:StringEquals"] for s in writes)
    for role in (renderer, reader, writer, version_writer):
        actions = all_actions(role)
        # Versions are immutable: nobody gets deletes, scans, or wildcard actions.
        assert not any("*" in a or "Delete" in a or a == "dynamodb:Scan" for a in actions), actions
    assert "kms:Encrypt" not in all_actions(reader) and "s3:PutObject" not in all_actions(reader)
    assert "s3:PutObject" not in all_actions(writer)  # the overflow objects are the writer's too
    assert {"kms:Encrypt", "kms:GenerateDataKey", "s3:PutObject"} <= all_actions(version_writer)
    render_resources = [s["Resource"] for s in _role_statements(template, stack, renderer) if "dynamodb:GetItem" in _actions(s)]
    assert render_resources == [table_arn]  # not the list index
    s3_resources = [s["Resource"] for s in _role_statements(template, stack, version_writer) if "s3:PutObject" in _actions(s)]
    assert s3_resources == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::team-artifacts/prompts/*"]]}]


def test_grant_write_needs_the_one_version_writer(stack):
    catalog, _ = _catalog(stack)
    with pytest.raises(ValueError, match="add the version writer first"):
        catalog.grant_write(_role(stack, "Early"))
    _writer_function(stack, catalog)
    with pytest.raises(ValueError, match="already has its version writer"):
        catalog.add_version_writer(lambda_.Function(stack, "Second", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                                                    code=lambda_.Code.from_inline("def handler(e, c):\n    return {}\n")))


def test_metrics_name_the_table_and_the_api_service(stack):
    catalog, _ = _catalog(stack)
    conflicts = catalog.metric_conditional_check_failures()
    assert (conflicts.namespace, conflicts.metric_name, conflicts.statistic) == ("AWS/DynamoDB", "ConditionalCheckFailedRequests", "Sum")
    assert stack.resolve(conflicts.dimensions["TableName"]) == {"Ref": stack.get_logical_id(catalog.table.node.default_child)}
    renders = catalog.metric_renders()
    assert (renders.namespace, renders.metric_name, renders.dimensions) == ("LLMOps", "PromptRendered", {"service": "prompt_catalog_api"})
    assert catalog.metric_alias_conflicts().metric_name == "PromptAliasConflict"


def test_imported_catalog_grants_render_by_name(stack):
    key, bucket = _parts(stack)
    imported = PromptCatalog.from_table_name(stack, "Imported", table_name="llmops-dev-prompt-catalog", key=key, overflow_bucket=bucket)
    role = _role(stack, "Rag")
    imported.grant_render(role)
    statements = _role_statements(Template.from_stack(stack), stack, role)
    ddb = next(s for s in statements if "dynamodb:GetItem" in _actions(s))
    assert stack.resolve(ddb["Resource"]) == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":dynamodb:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, ":table/llmops-dev-prompt-catalog"]]
    }
