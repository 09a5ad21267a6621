"""PromptCatalogStack: encrypted recoverable table, IAM-only validated API, sync-at-deploy wiring."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from llmops.stacks.prompt_catalog import PROMPTS_DIR, prompts_hash
from tests.helpers import config_with, make_app, synth_stage, template_of

ONLY_PROMPTS = {"capabilities": {"rag": False, "data_prep": False, "fine_tuning": False, "prompt_catalog": True, "human_review": False}}


@pytest.fixture(scope="module")
def dev():
    return synth_stage("dev", ONLY_PROMPTS).prompt_catalog


@pytest.fixture(scope="module")
def dev_template(dev):
    return template_of(dev)


@pytest.fixture(scope="module")
def prod_template():
    return template_of(synth_stage("prod", ONLY_PROMPTS).prompt_catalog)


def _actions(statement) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def test_table_encryption_pitr_and_deletion_protection_by_environment(dev_template, prod_template):
    for template, protected in ((dev_template, False), (prod_template, True)):
        template.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": protected,
            },
        )
    prod_template.has_resource_properties("AWS::DynamoDB::Table", {"TableName": "llmops-prd-prompt-catalog"})
    prod_template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


def test_every_api_method_requires_iam_and_is_validated(dev_template):
    methods = dev_template.find_resources("AWS::ApiGateway::Method")
    assert len(methods) == 9
    routes = set()
    for method in methods.values():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        assert "RequestValidatorId" in props
        assert props["Integration"]["Type"] == "AWS_PROXY"
        routes.add(props["HttpMethod"])
        if props["HttpMethod"] in ("POST", "PUT"):
            assert "application/json" in props["RequestModels"]
    assert routes == {"GET", "POST", "PUT"}
    dev_template.has_resource_properties("AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True})
    dev_template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "GET", "RequestParameters": {"method.request.querystring.from": True, "method.request.querystring.to": True}},
    )


def test_api_is_account_only_logged_throttled_and_traced(dev_template):
    dev_template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "Policy": {"Statement": [Match.object_like({"Action": "execute-api:Invoke", "Effect": "Allow", "Principal": {"AWS": Match.any_value()}})]},
        },
    )
    dev_template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("caller")},
            "MethodSettings": [Match.object_like({"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100})],
        },
    )
    for group in dev_template.find_resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]


def _role_statements(stack, template, role) -> list[dict]:
    role_id = stack.get_logical_id(role.node.default_child)
    return [s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_lambda_roles_get_catalog_access_without_deletes_or_wildcard_actions(dev, dev_template):
    table_id = dev.get_logical_id(dev.catalog.table.node.default_child)
    writer_id = dev.get_logical_id(dev.writer_function.function.node.default_child)
    for name, fn in (("api", dev.api_function), ("sync", dev.sync_function), ("writer", dev.writer_function)):
        statements = _role_statements(dev, dev_template, fn.role)
        actions = {a for s in statements for a in _actions(s)}
        assert {"dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"} <= actions, name
        data_actions = {a for a in actions if a.split(":")[0] in ("dynamodb", "s3", "kms")}
        assert not any(a.endswith("*") or "Delete" in a or a == "dynamodb:Scan" for a in data_actions), (name, data_actions)
        if name != "writer":
            (invoke,) = [s for s in statements if "lambda:InvokeFunction" in _actions(s)]
            assert invoke["Resource"] == {"Fn::GetAtt": [writer_id, "Arn"]}, name
    write = next(s for s in _role_statements(dev, dev_template, dev.writer_function.role) if "dynamodb:PutItem" in _actions(s))
    assert write["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}


@pytest.mark.parametrize("which", ["dev", "prod"])
def test_no_role_but_the_version_writers_can_replace_a_version_item(which, dev, dev_template, prod_template):
    from llmops.constructs.prompt_catalog.catalog import VERSION_ATTRIBUTES

    template = dev_template if which == "dev" else prod_template
    writer_roles = [{"Ref": rid} for rid, r in template.find_resources("AWS::IAM::Role").items()
                    if rid.startswith("WriterFunction")]
    assert len(writer_roles) == 1
    whole_item = {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate"}
    checked = 0
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = _actions(statement)
            if any(a in ("*", "dynamodb:*") or a.startswith("dynamodb:") and "*" in a for a in actions):
                raise AssertionError(f"a wildcard DynamoDB action: {statement}")
            if actions & whole_item:
                assert policy["Properties"]["Roles"] == writer_roles, statement
                checked += 1
            if "dynamodb:UpdateItem" in actions and policy["Properties"]["Roles"] != writer_roles:
                names = set(statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
                assert not names & set(VERSION_ATTRIBUTES), (policy["Properties"]["Roles"], sorted(names & set(VERSION_ATTRIBUTES)))
                checked += 1
    assert checked == 3  # the writer's PutItem, the API's and the sync's UpdateItem


def test_functions_carry_the_catalog_environment(dev_template):
    for entry in ("prompt_catalog_api", "prompt_catalog_sync", "prompt_catalog_writer"):
        dev_template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": f"lambdas.{entry}.handler.handler",
                "Runtime": "python3.13",
                "Architectures": ["arm64"],
                # dev runs functions that reach no VPC resource outside the VPC (the dev cost profile)
                "VpcConfig": Match.absent(),
                "Environment": {"Variables": Match.object_like({"PROMPT_TABLE_NAME": Match.any_value(), "PROMPT_OVERFLOW_PREFIX": "prompts/"})},
            },
        )


def test_only_the_writers_callers_are_told_to_write_through_it(dev_template):
    functions = {r["Properties"]["Handler"].split(".")[1]: r["Properties"]["Environment"]["Variables"]
                 for r in dev_template.find_resources("AWS::Lambda::Function").values()
                 if r["Properties"].get("Handler", "").startswith("lambdas.")}
    assert "PROMPT_VERSION_WRITER" not in functions["prompt_catalog_writer"]
    for entry in ("prompt_catalog_api", "prompt_catalog_sync"):
        assert functions[entry]["PROMPT_VERSION_WRITER"]["Fn::GetAtt"][1] == "Arn"


def test_sync_custom_resource_tracks_the_prompt_files(dev, dev_template, tmp_path):
    (resource,) = dev_template.find_resources("Custom::PromptSync").values()
    assert resource["Properties"]["PromptsHash"] == prompts_hash(PROMPTS_DIR)
    # The sync runs only after its role may write to the table.
    assert any(d.startswith("SyncFunctionRole") for d in resource["DependsOn"])
    # The bundle carries prompts/*.yaml beside lambdas/.
    assert dev.sync_function.bundle.extra_files == ("prompts",)
    assert any(rel.startswith("prompts/") and rel.endswith(".yaml") for _, rel in dev.sync_function.bundle.source_files())
    # The hash moves when a file changes and only then.
    for path in PROMPTS_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    assert prompts_hash(tmp_path) == prompts_hash(PROMPTS_DIR)
    (tmp_path / "rag-answer.yaml").write_text((tmp_path / "rag-answer.yaml").read_text() + "\n# edited\n")
    assert prompts_hash(tmp_path) != prompts_hash(PROMPTS_DIR)


def test_api_invoke_grants_name_each_method():
    from aws_cdk import aws_iam as iam

    from llmops.stage import LlmOpsStage

    # A stage of its own: the cached one is shared with the template assertions above.
    stack = LlmOpsStage(make_app(), config_with("dev", ONLY_PROMPTS).get("dev"), nag=False).prompt_catalog
    reader = iam.Role(stack, "TestReader", assumed_by=iam.AccountRootPrincipal())
    writer = iam.Role(stack, "TestWriter", assumed_by=iam.AccountRootPrincipal())

    def paths(grant):
        # arn:...:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>: keep METHOD/path.
        joined = ["".join(p if isinstance(p, str) else "T" for p in stack.resolve(r)["Fn::Join"][1]) for r in grant.principal_statements[0].resources]
        return sorted(j.split("/", 2)[2] for j in joined)

    read = paths(stack.grant_api_invoke(reader))
    write = paths(stack.grant_api_invoke(writer, write=True))
    assert read == ["GET/prompts", "GET/prompts/*", "POST/prompts/*/render"]
    assert set(write) - set(read) == {"POST/prompts/*/versions", "PUT/prompts/*/aliases/*"}


def test_rag_query_gets_render_access_only():
    stage = synth_stage("dev", {"capabilities": {"data_prep": False, "fine_tuning": False, "rag": True, "prompt_catalog": True, "human_review": False}})
    rag = template_of(stage.rag)
    catalog_statements = [
        s
        for p in rag.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "prompt-catalog" in json.dumps(s["Resource"]) and any(a.startswith("dynamodb:") for a in _actions(s))
    ]
    assert catalog_statements
    assert {a for s in catalog_statements for a in _actions(s)} == {"dynamodb:GetItem", "dynamodb:Query"}
    assert "/index/" not in json.dumps(catalog_statements)


@pytest.mark.synth
def test_synth_passes_cdk_nag(tmp_path) -> None:
    """cdk-nag AwsSolutions fails synth on any unacknowledged finding in the prompt catalog stack."""
    from llmops.stage import LlmOpsStage

    app = make_app(outdir=str(tmp_path))
    LlmOpsStage(app, config_with("prod", ONLY_PROMPTS).get("prod"), nag=True)
    app.synth()  # raises ValidationFailed with the report on any finding
