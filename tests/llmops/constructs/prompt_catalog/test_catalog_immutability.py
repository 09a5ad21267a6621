"""Version immutability in IAM: the synthesized policies, evaluated against real requests.

Only the version writer function may PutItem (a conditioned, version-shaped create) and write
metadata; every ``grant_write`` grantee (the API, the sync, any other writer) has no PutItem or
BatchWriteItem at all and an UpdateItem that may name only alias and sync-state attributes, none of
which a version item has. The requests are the ones the real store sends, captured from boto3 while
a sync and API-style writes run against moto through the writer function.

Two evaluators: moto's IAM enforcement (``set_initial_no_auth_action_count``) refuses a grantee's
direct PutItem/BatchWriteItem overwrite made with the SDK. moto evaluates actions only (a DynamoDB
request's resource is ``*`` and it ignores ``ForAllValues``/``ForAnyValue`` conditions), so the
policy it gets is the template's statements widened (every resource ``*``, conditions dropped): a
refusal under the widened policy is a refusal under the real one. The conditioned UpdateItem
statements are evaluated by ``allowed`` below (Allow statements, ``Action``, the
``ForAllValues``/``ForAnyValue`` operators on ``dynamodb:Attributes``, implicit deny).
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
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.runtime.prompt_catalog.model import parse_content
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from lambdas.runtime.prompt_catalog.sync import sync_directory
from llmops.constructs.core.secure_bucket import AccessLogBucket, SecureBucket
from llmops.constructs.prompt_catalog.catalog import VERSION_ATTRIBUTES, PromptCatalog
from tests.helpers import make_app
from tests.lambdas.prompt_catalog.conftest import REGION, TABLE, TEXT_CONTENT, aws_env, catalog, create_catalog_table, writer_lambda  # noqa: F401

REPO_PROMPTS = Path(__file__).resolve().parents[4] / "prompts"
_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN", "attribute_exists", "attribute_not_exists",
          "attribute_type", "begins_with", "contains", "size", "if_not_exists", "list_append"}
_NAME = re.compile(r"(?<![:\w#])#?[A-Za-z_][A-Za-z0-9_]*")


@pytest.fixture(scope="module")
def policies() -> dict[str, list[dict]]:
    """The table statements of the version writer's role and of a grant_write grantee's role."""
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    logs = AccessLogBucket(stack, "Logs", removal_policy=RemovalPolicy.DESTROY).bucket
    bucket = SecureBucket(stack, "Artifacts", bucket_name="a-artifacts", key=key, access_logs=logs, removal_policy=RemovalPolicy.DESTROY)
    catalog = PromptCatalog(stack, "Catalog", key=key, overflow_bucket=bucket)
    writer_role = iam.Role(stack, "VersionWriter", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    catalog.add_version_writer(lambda_.Function(stack, "WriterFunction", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                                                code=lambda_.Code.from_inline("def handler(e, c):\n    return {}\n"), role=writer_role))
    grantee = iam.Role(stack, "Grantee", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    catalog.grant_write(grantee)
    template = Template.from_stack(stack)
    table_arn = {"Fn::GetAtt": [stack.get_logical_id(catalog.table.node.default_child), "Arn"]}

    def statements(role, on_table: bool) -> list[dict]:
        role_id = stack.get_logical_id(role.node.default_child)
        found = [s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
                 for s in p["Properties"]["PolicyDocument"]["Statement"]]
        # Keep the statements on the table itself (the evaluator matches that one resource).
        return [s for s in found if not on_table or table_arn == s["Resource"] or table_arn in _as_list(s["Resource"])]

    return {"writer": statements(writer_role, True), "grantee": statements(grantee, True),
            "grantee-all": statements(grantee, False), "writer-all": statements(writer_role, False)}


@pytest.fixture(scope="module")
def writer_statements(policies) -> list[dict]:
    return policies["writer"]


@pytest.fixture(scope="module")
def grantee_statements(policies) -> list[dict]:
    return policies["grantee"]


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
def recorded(catalog, writer_lambda):
    """A store that writes as the deployed API/sync do, and the writes each side sent."""
    caller: list[tuple[str, dict]] = []
    writer: list[tuple[str, dict]] = []
    catalog.dynamodb.meta.events.register("provide-client-params.dynamodb.*",
                                          lambda params, model, **_: caller.append((model.name, dict(params))))
    # The writer handler builds its clients from the default session the writer_lambda fixture set up.
    boto3.DEFAULT_SESSION.events.register("provide-client-params.dynamodb.*",
                                          lambda params, model, **_: writer.append((model.name, dict(params))))
    yield writer_lambda.store(catalog, inline_limit=400), caller, writer, catalog.dynamodb


WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement")


def test_every_write_is_allowed_to_the_side_that_sends_it(policies, recorded, tmp_path):
    store, caller, writer, _ = recorded
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
    caller_writes = [(op, p) for op, p in caller if op in WRITES]
    writer_writes = [(op, p) for op, p in writer if op in WRITES]
    assert {op for op, _ in caller_writes} == {"UpdateItem"}  # aliases and sync state only
    assert {op for op, _ in writer_writes} == {"PutItem", "UpdateItem"}
    for side, writes in (("grantee", caller_writes), ("writer", writer_writes)):
        for operation, params in writes:
            attributes = request_attributes(operation, params)
            assert allowed(policies[side], operation, attributes), (side, operation, sorted(attributes))
            if side == "grantee":
                assert not allowed(policies["writer"], operation, attributes) or not attributes & set(VERSION_ATTRIBUTES)
    # The contract of the one writer: every PutItem it sends is a create-only put.
    puts = [params for op, params in writer_writes if op == "PutItem"]
    assert puts and all(p["ConditionExpression"] == "attribute_not_exists(pk)" for p in puts)


@pytest.mark.parametrize("attribute", VERSION_ATTRIBUTES)
def test_a_grantees_update_of_any_version_attribute_is_refused(grantee_statements, attribute):
    # e.g. aws dynamodb update-item --key '{"pk":{"S":"P#rag-answer"},"sk":{"S":"V#0000000001"}}' --update-expression "SET content_json = :x"
    params = {"Key": {"pk": {}, "sk": {}}, "UpdateExpression": f"SET {attribute} = :x"}
    assert not allowed(grantee_statements, "UpdateItem", request_attributes("UpdateItem", params))
    aliased = {"Key": {"pk": {}, "sk": {}}, "UpdateExpression": "SET #a = :x", "ExpressionAttributeNames": {"#a": attribute}}
    assert not allowed(grantee_statements, "UpdateItem", request_attributes("UpdateItem", aliased))
    removed = {"Key": {"pk": {}, "sk": {}}, "UpdateExpression": f"REMOVE {attribute}"}
    assert not allowed(grantee_statements, "UpdateItem", request_attributes("UpdateItem", removed))


@pytest.mark.parametrize("item", [
    {"pk", "sk", "prompt_id", "version", "content_hash", "kind", "technique", "change_note", "author", "created_at", "content_json"},
    {"pk", "sk", "content_hash", "content_json"},
    {"pk", "sk"},
])
def test_a_grantee_can_put_no_item_at_all(grantee_statements, item):
    assert not allowed(grantee_statements, "PutItem", item)


@pytest.mark.parametrize("attribute", ["content_json", "content_ref", "content_hash", "version", "author", "change_note",
                                       "kind", "technique"])
def test_the_writer_cannot_update_version_content_either(writer_statements, attribute):
    params = {"Key": {"pk": {}, "sk": {}}, "UpdateExpression": f"SET {attribute} = :x"}
    assert not allowed(writer_statements, "UpdateItem", request_attributes("UpdateItem", params))


@pytest.mark.parametrize(("item", "why"), [
    ({"pk", "sk"}, "blank a version"),
    ({"pk", "sk", "targets", "revision", "prompt_id"}, "replace an item with an alias-shaped one"),
    ({"pk", "sk", "description", "latest_version"}, "replace an item with a metadata-shaped one"),
    ({"pk", "sk", "content_hash", "content_json", "extra"}, "a version with attributes versions never have"),
])
def test_put_item_cannot_replace_or_blank_items(writer_statements, item, why):
    assert not allowed(writer_statements, "PutItem", item), why


@pytest.mark.parametrize("action", ["DeleteItem", "BatchWriteItem", "PartiQLUpdate", "PartiQLDelete", "PartiQLInsert"])
@pytest.mark.parametrize("side", ["writer", "grantee"])
def test_no_delete_or_side_door_write_is_granted(policies, side, action):
    assert not allowed(policies[side], action, {"pk", "sk"})


def test_a_second_create_of_a_version_number_is_refused_by_dynamodb(recorded):
    store, _, writer, dynamodb = recorded
    store.create_version("p", parse_content(TEXT_CONTENT))
    first = next(params for op, params in writer if op == "PutItem")
    with pytest.raises(ClientError) as info:  # replaying the store's own create cannot overwrite v1
        dynamodb.put_item(**{**first, "Item": {**first["Item"], "content_json": {"S": "{}"}}})
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert store.get_version("p", 1).content == parse_content(TEXT_CONTENT)


def _widened(statements: list[dict]) -> dict:
    """The statements with every resource ``*`` and no conditions: only ever more permissive."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": s["Effect"], "Action": s["Action"], "Resource": "*"} for s in statements]}


def _principal_clients(iam_client, name: str, policy: dict):
    import json

    iam_client.create_user(UserName=name)
    iam_client.put_user_policy(UserName=name, PolicyName="from-template", PolicyDocument=json.dumps(policy))
    key = iam_client.create_access_key(UserName=name)["AccessKey"]
    return boto3.client("dynamodb", region_name=REGION, aws_access_key_id=key["AccessKeyId"],
                        aws_secret_access_key=key["SecretAccessKey"], aws_session_token=None)


def test_a_grantees_direct_overwrite_with_the_sdk_is_refused_by_iam(policies, monkeypatch):
    from moto.core import set_initial_no_auth_action_count

    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    # The first 10 requests run unauthorised (the table; one version: query, put, update; two users with a policy and a
    # key each); every later one is authorised. A miscount fails the setup or the refusals below, never passes silently.
    @set_initial_no_auth_action_count(10)
    def run() -> None:
        with mock_aws():
            admin = boto3.client("dynamodb", region_name=REGION)
            create_catalog_table(admin)
            store = PromptCatalogStore(TABLE, dynamodb=admin)
            store.create_version("p", parse_content(TEXT_CONTENT))  # query, put, update: requests 2-4
            iam_client = boto3.client("iam", region_name=REGION)
            grantee = _principal_clients(iam_client, "grantee", _widened(policies["grantee-all"]))
            writer = _principal_clients(iam_client, "writer", _widened(policies["writer-all"]))
            key = {"pk": {"S": "P#p"}, "sk": {"S": "V#0000000001"}}
            forged = {**key, "prompt_id": {"S": "p"}, "version": {"N": "1"}, "content_hash": {"S": "0" * 64},
                      "kind": {"S": "text"}, "technique": {"S": "zero-shot"}, "change_note": {"S": ""},
                      "author": {"S": "mallory"}, "created_at": {"S": "2026-01-01T00:00:00.000Z"},
                      "content_json": {"S": '{"template": "forged"}'}}
            # The positive control: the same credentials may read, so the refusals below are IAM's.
            assert grantee.get_item(TableName=TABLE, Key=key)["Item"]["version"] == {"N": "1"}
            for action, call in (("PutItem", lambda: grantee.put_item(TableName=TABLE, Item=forged)),
                                 ("BatchWriteItem", lambda: grantee.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": forged}}]}))):
                with pytest.raises(ClientError) as info:
                    call()
                # moto answers IAM refusals in the query protocol's XML: 403 with an AccessDenied code inside.
                response = info.value.response
                assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
                assert "<Code>AccessDenied</Code>" in response["Error"]["Message"] and f"dynamodb:{action}" in response["Error"]["Message"]
            # The writer may put, but only ever as a conditional create: DynamoDB refuses the overwrite.
            with pytest.raises(ClientError) as info:
                writer.put_item(TableName=TABLE, Item=forged, ConditionExpression="attribute_not_exists(pk)")
            assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
            assert PromptCatalogStore(TABLE, dynamodb=grantee).get_version("p", 1).content == parse_content(TEXT_CONTENT)

    run()
