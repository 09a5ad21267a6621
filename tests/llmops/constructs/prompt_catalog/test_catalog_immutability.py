"""Version immutability in IAM: the synthesized write policy, evaluated against real requests.

moto does not evaluate IAM, so the writer role's statements are taken from the synthesized
template and evaluated here (Allow statements, ``Action``, ``ForAllValues``/``ForAnyValue``
conditions on ``dynamodb:Attributes``, implicit deny). The requests are the ones the real store
sends, captured from boto3 while a sync and API-style writes run against moto.

Proven: every write the store makes is allowed; a direct ``UpdateItem`` of any version content
attribute, a ``PutItem`` replacing an alias or metadata item, a ``PutItem`` blanking a version and
any delete are refused. Not provable with IAM (it never sees a ``ConditionExpression``): a
``PutItem`` of a complete different version over an existing number; there the store's
``attribute_not_exists`` create (checked below as a contract, and refused by DynamoDB) is the guard.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import boto3
import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.runtime.prompt_catalog.model import parse_content
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from lambdas.runtime.prompt_catalog.sync import sync_directory
from llmops.constructs.core.secure_bucket import AccessLogBucket, SecureBucket
from llmops.constructs.prompt_catalog.catalog import PromptCatalog
from tests.helpers import make_app
from tests.lambdas.prompt_catalog.conftest import BUCKET, REGION, TABLE, TEXT_CONTENT, create_catalog_table

REPO_PROMPTS = Path(__file__).resolve().parents[4] / "prompts"
_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN", "attribute_exists", "attribute_not_exists",
          "attribute_type", "begins_with", "contains", "size", "if_not_exists", "list_append"}
_NAME = re.compile(r"(?<![:\w#])#?[A-Za-z_][A-Za-z0-9_]*")


@pytest.fixture(scope="module")
def writer_statements() -> list[dict]:
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    logs = AccessLogBucket(stack, "Logs", removal_policy=RemovalPolicy.DESTROY).bucket
    bucket = SecureBucket(stack, "Artifacts", bucket_name="a-artifacts", key=key, access_logs=logs, removal_policy=RemovalPolicy.DESTROY)
    catalog = PromptCatalog(stack, "Catalog", key=key, overflow_bucket=bucket)
    role = iam.Role(stack, "Writer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    catalog.grant_write(role)
    template = Template.from_stack(stack)
    role_id = stack.get_logical_id(role.node.default_child)
    table_arn = {"Fn::GetAtt": [stack.get_logical_id(catalog.table.node.default_child), "Arn"]}
    statements = [s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    # Keep the statements on the table itself (the evaluator matches that one resource).
    return [s for s in statements if table_arn == s["Resource"] or table_arn in (s["Resource"] if isinstance(s["Resource"], list) else [])]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[dict], action: str, attributes: set[str]) -> bool:
    """IAM for one request on the table: allowed if an Allow statement's action and conditions all match."""
    for statement in statements:
        if statement["Effect"] != "Allow" or f"dynamodb:{action}" not in _as_list(statement["Action"]):
            continue
        ok = True
        for operator, conditions in statement.get("Condition", {}).items():
            for key, values in conditions.items():
                assert key == "dynamodb:Attributes", f"evaluator does not know condition key {key}"
                values = set(_as_list(values))
                if operator == "ForAllValues:StringEquals":
                    ok &= attributes <= values
                elif operator == "ForAnyValue:StringEquals":
                    ok &= bool(attributes & values)
                else:
                    raise AssertionError(f"evaluator does not know operator {operator}")
        if ok:
            return True
    return False


def request_attributes(operation: str, params: dict) -> set[str]:
    """The top-level attribute names a write request touches (item/key names and expression names)."""
    names = set(params.get("Item", {})) | set(params.get("Key", {}))
    aliases = params.get("ExpressionAttributeNames", {})
    for expression in (params.get("UpdateExpression", ""), params.get("ConditionExpression", "")):
        for token in _NAME.findall(expression):
            if token not in _WORDS:
                names.add(aliases.get(token, token))
    return names


@pytest.fixture
def recorded(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        create_catalog_table(dynamodb)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        calls: list[tuple[str, dict]] = []
        dynamodb.meta.events.register("provide-client-params.dynamodb.*",
                                      lambda params, model, **_: calls.append((model.name, dict(params))))
        yield PromptCatalogStore(TABLE, dynamodb=dynamodb, s3=s3, overflow_bucket=BUCKET, inline_limit=400), calls, dynamodb


def test_every_write_the_store_makes_is_allowed(writer_statements, recorded, tmp_path):
    store, calls, _ = recorded
    prompts = Path(shutil.copytree(REPO_PROMPTS, tmp_path / "prompts"))
    sync_directory(store, prompts)
    version, _ = store.create_version("rag-answer", parse_content({**TEXT_CONTENT, "template": "New {question} {context}"}),
                                      author="api-user", description="changed", owner="me", tags=["t"])
    alias = store.get_alias("rag-answer", "prod")
    store.move_alias("rag-answer", "prod", [{"version": 1, "weight": 90}, {"version": version.version, "weight": 10}],
                     expected_revision=alias.revision, updated_by="api-user")
    store.move_alias("rag-answer", "canary", [{"version": version.version}], expected_revision=0)
    path = prompts / "ticket-triage.yaml"
    path.write_text(path.read_text().replace("max_tokens: 5", "max_tokens: 6").replace("platform-team", "support"))
    sync_directory(store, prompts)
    writes = [(op, params) for op, params in calls if op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")]
    assert {op for op, _ in writes} == {"PutItem", "UpdateItem"}
    for operation, params in writes:
        attributes = request_attributes(operation, params)
        assert allowed(writer_statements, operation, attributes), (operation, sorted(attributes))
    # The contract IAM cannot check: every PutItem the store sends is a create-only put.
    puts = [params for op, params in writes if op == "PutItem"]
    assert puts and all(p["ConditionExpression"] == "attribute_not_exists(pk)" for p in puts)


@pytest.mark.parametrize("attribute", ["content_json", "content_ref", "content_hash", "version", "author", "change_note",
                                       "kind", "technique"])
def test_a_direct_update_of_version_content_is_refused(writer_statements, attribute):
    # e.g. aws dynamodb update-item --key '{"pk":{"S":"P#rag-answer"},"sk":{"S":"V#0000000001"}}' --update-expression "SET content_json = :x"
    params = {"Key": {"pk": {}, "sk": {}}, "UpdateExpression": f"SET {attribute} = :x"}
    assert not allowed(writer_statements, "UpdateItem", request_attributes("UpdateItem", params))
    aliased = {"Key": {"pk": {}, "sk": {}}, "UpdateExpression": "SET #a = :x", "ExpressionAttributeNames": {"#a": attribute}}
    assert not allowed(writer_statements, "UpdateItem", request_attributes("UpdateItem", aliased))


@pytest.mark.parametrize(("item", "why"), [
    ({"pk", "sk"}, "blank a version"),
    ({"pk", "sk", "targets", "revision", "prompt_id"}, "replace an item with an alias-shaped one"),
    ({"pk", "sk", "description", "latest_version"}, "replace an item with a metadata-shaped one"),
    ({"pk", "sk", "content_hash", "content_json", "extra"}, "a version with attributes versions never have"),
])
def test_put_item_cannot_replace_or_blank_items(writer_statements, item, why):
    assert not allowed(writer_statements, "PutItem", item), why


@pytest.mark.parametrize("action", ["DeleteItem", "BatchWriteItem", "PartiQLUpdate", "PartiQLDelete", "PartiQLInsert"])
def test_no_delete_or_side_door_write_is_granted(writer_statements, action):
    assert not allowed(writer_statements, action, {"pk", "sk"})


def test_a_second_create_of_a_version_number_is_refused_by_dynamodb(recorded):
    store, calls, dynamodb = recorded
    store.create_version("p", parse_content(TEXT_CONTENT))
    first = next(params for op, params in calls if op == "PutItem")
    with pytest.raises(ClientError) as info:  # replaying the store's own create cannot overwrite v1
        dynamodb.put_item(**{**first, "Item": {**first["Item"], "content_json": {"S": "{}"}}})
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert store.get_version("p", 1).content == parse_content(TEXT_CONTENT)
