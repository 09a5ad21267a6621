"""The delivery pipeline: stage order, approvals, gates and their commands, IAM scoped to the named accounts."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from llmops.config import ConfigError, parse_config
from tests.helpers import make_app, raw_config

pytestmark = pytest.mark.xdist_group("delivery")


@pytest.fixture(scope="module")
def pipeline():
    from llmops.app import build_app

    app = build_app(make_app(), config=parse_config(raw_config()), nag=False)
    stack = app.node.find_child("Delivery")
    return stack, Template.from_stack(stack)


def _stages(template):
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]["Stages"]


def test_stages_in_config_order_with_approval_before_prod_only(pipeline):
    _, template = pipeline
    names = [s["Name"] for s in _stages(template)]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "dev", "staging", "prod"]
    actions = {s["Name"]: [a["Name"] for a in s["Actions"]] for s in _stages(template)}
    assert any("Approve-prod" in a for a in actions["prod"])
    assert not any("Approve" in a for a in actions["dev"] + actions["staging"])
    for name in ("dev", "staging", "prod"):
        assert any(f"Gate-{name}" in a for a in actions[name])
    # The approval comes before the prod deployment; the gate after it.
    prod = next(s for s in _stages(template) if s["Name"] == "prod")["Actions"]
    order = {a["Name"]: a["RunOrder"] for a in prod}
    approve = next(v for k, v in order.items() if "Approve" in k)
    gate = next(v for k, v in order.items() if "Gate" in k)
    deploys = [v for k, v in order.items() if k.endswith(".Deploy")]
    assert approve < min(deploys) and gate > max(deploys)


def _buildspec(template, fragment):
    for project in template.find_resources("AWS::CodeBuild::Project").values():
        spec = project["Properties"]["Source"].get("BuildSpec", "")
        if fragment in json.dumps(spec):
            return json.dumps(spec)
    raise AssertionError(f"no CodeBuild project runs {fragment!r}")


def test_synth_step_runs_the_same_gates_as_a_laptop(pipeline):
    _, template = pipeline
    spec = _buildspec(template, "make synth")
    assert "make test" in spec and ".venv/bin/llmops release check release.json" in spec


def test_gates_check_the_release_against_each_environment(pipeline):
    _, template = pipeline
    for name in ("dev", "staging", "prod"):
        spec = _buildspec(template, f"llmops delivery gate --env {name}")
        assert f"llmops release check release.json --env {name}" in spec


def test_no_assume_role_on_role_wildcards(pipeline):
    _, template = pipeline
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "sts:AssumeRole" in json.dumps(statement["Action"]):
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for resource in resources:
                    assert "role/*" not in json.dumps(resource), statement
                    text = json.dumps(resource)
                    # a role of this stack, a CDK bootstrap role or an environment's delivery role of a named account
                    assert "Fn::GetAtt" in text or resource in ENV_ROLES.values() or (
                        "cdk-hnb659fds-" in text
                        and any(a in text for a in ("333333333333", "111111111111", "222222222222", "AWS::AccountId"))
                    ), text


ENV_ROLES = {"dev": "arn:aws:iam::333333333333:role/llmops-dev-delivery-gate",
             "staging": "arn:aws:iam::111111111111:role/llmops-stg-delivery-gate",
             "prod": "arn:aws:iam::222222222222:role/llmops-prd-delivery-gate"}


def test_each_step_role_assumes_only_its_environments_gate_role(pipeline):
    _, template = pipeline
    roles = template.find_resources("AWS::IAM::Role")
    for name, arn in ENV_ROLES.items():
        (logical,) = [k for k, r in roles.items() if r["Properties"].get("RoleName") == f"llmops-delivery-{name}-gate"]
        statements = [s for p in template.find_resources("AWS::IAM::Policy").values()
                      if {"Ref": logical} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
        assumes = [s for s in statements if s["Action"] == "sts:AssumeRole"]
        assert [s["Resource"] for s in assumes] == [arn]
        assert not any(s["Action"] == "sagemaker:DescribeModelPackage" for s in statements)


def _step(template, name):
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    stage = next(s for s in pipeline["Properties"]["Stages"] if s["Name"] == name)
    return {a["Name"]: a for a in stage["Actions"]}


def test_smoke_after_dev_and_staging_with_the_stack_outputs_and_the_gate_role(pipeline):
    _, template = pipeline
    for name in ("dev", "staging"):
        actions = _step(template, name)
        smoke = next(a for k, a in actions.items() if k.startswith("Smoke-"))
        deploys = [a["RunOrder"] for k, a in actions.items() if k.endswith(".Deploy")]
        assert smoke["RunOrder"] > max(deploys)
        variables = json.loads(smoke["Configuration"]["EnvironmentVariables"])
        by_name = {v["name"]: v["value"] for v in variables}
        prefix = "llmops-dev" if name == "dev" else "llmops-stg"
        # CDK Pipelines passes stack outputs as the deploy action's variables: #{<namespace>.<output>}
        assert by_name["QUERY_URL"].startswith("#{") and "QueryUrl" in by_name["QUERY_URL"]
        assert "LlmEndpointName" in by_name["LLM_ENDPOINT"] and "EmbeddingsEndpointName" in by_name["EMBEDDINGS_ENDPOINT"]
        spec = _buildspec(template, f"llmops delivery smoke --env {name}")
        assert f"--role-arn {ENV_ROLES[name]}" in spec
        deploy = next(a for k, a in actions.items() if k.endswith(f"{prefix}-rag.Deploy") or k.endswith("Rag.Deploy"))
        assert deploy.get("Namespace")
    assert not any(k.startswith("Smoke-") for k in _step(template, "prod"))  # prod gets no synthetic traffic


def test_environment_gate_roles_trust_only_the_tooling_step_role():
    from llmops.app import build_app
    from llmops.config import parse_config

    app = build_app(make_app(), config=parse_config(raw_config()), nag=False)
    stage = app.node.find_child("staging")
    template = Template.from_stack(stage.delivery_access)
    (role,) = [r["Properties"] for r in template.find_resources("AWS::IAM::Role").values()
               if r["Properties"].get("RoleName") == "llmops-stg-delivery-gate"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert ":iam::333333333333:root" in json.dumps(statement["Principal"])
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::333333333333:role/llmops-delivery-staging-gate"}}
    actions = sorted({a for p in template.find_resources("AWS::IAM::Policy").values()
                      for s in p["Properties"]["PolicyDocument"]["Statement"]
                      for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])})
    assert actions == ["execute-api:Invoke", "sagemaker:InvokeEndpoint"]


def test_cross_account_keys_and_example_guard(pipeline):
    _, template = pipeline
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    rules = template.to_json().get("Rules", {})
    assert "ExampleAccountsOnly" in rules


def test_no_pipeline_when_only_some_environments_are_synthesized():
    from llmops.app import build_app

    app = build_app(make_app(env="dev"), config=parse_config(raw_config()), nag=False)
    assert app.node.try_find_child("Delivery") is None


@pytest.mark.parametrize(
    "delivery, message",
    [
        ({"stages": ["dev", "prod"]}, "delivery.stages: prod (production) must come after staging"),
        ({"stages": ["dev", "qa"]}, "delivery.stages: unknown environment(s) ['qa']"),
        ({"example": False}, "delivery.account: 333333333333 is an example account"),
        ({"source": {"kind": "s3"}}, "bucket and key: an s3 source needs both"),
        ({"source": {"connection_arn": "nope"}}, "delivery.source: connection_arn"),
        ({"account": 333333333333}, "delivery.account"),
    ],
)
def test_bad_delivery_config_is_refused_naming_the_field(delivery, message):
    raw = raw_config()
    for key, value in delivery.items():
        if isinstance(value, dict):
            raw["delivery"][key].update(value)
        else:
            raw["delivery"][key] = value
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert message in str(err.value)


def test_skipping_staging_is_allowed_only_when_config_says_so():
    raw = raw_config()
    raw["delivery"].update(stages=["dev", "prod"], allow_skipping_staging=True)
    assert parse_config(raw).delivery.stages == ("dev", "prod")


def test_a_placeholder_stage_account_stops_a_real_pipeline():
    raw = raw_config()
    raw["delivery"].update(example=False, account="444455556666")
    with pytest.raises(ConfigError, match="environments.staging.account: 111111111111 is an example account"):
        parse_config(raw)


def test_copy_promotion_runs_a_step_before_the_inference_stack_with_the_promote_role():
    from llmops.app import build_app

    raw = raw_config()
    staging = raw["environments"]["staging"]
    staging["delivery"] = {"model_promotion": "copy"}
    staging.setdefault("inference", {})["llm"] = {"model": {"source": "model-package", "use_case": "assistant"}}
    app = build_app(make_app(), config=parse_config(raw), nag=False)
    template = Template.from_stack(app.node.find_child("Delivery"))
    actions = _step(template, "staging")
    (promote,) = [a for k, a in actions.items() if k.endswith("PromoteModel-staging")]
    inference_deploy = next(a for k, a in actions.items() if k == "llmops-stg-inference.Deploy")
    fine_tuning_deploy = next(a for k, a in actions.items() if k == "llmops-stg-fine-tuning.Deploy")
    assert fine_tuning_deploy["RunOrder"] < promote["RunOrder"] < inference_deploy["RunOrder"]
    spec = _buildspec(template, "llmops delivery promote-model --env staging")
    assert "--role-arn arn:aws:iam::111111111111:role/llmops-stg-delivery-promote" in spec
    roles = template.find_resources("AWS::IAM::Role")
    (logical,) = [k for k, r in roles.items() if r["Properties"].get("RoleName") == "llmops-delivery-staging-gate"]
    assumes = [s["Resource"] for p in template.find_resources("AWS::IAM::Policy").values()
               if {"Ref": logical} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]
               if s["Action"] == "sts:AssumeRole"]
    assert assumes == [[ENV_ROLES["staging"], "arn:aws:iam::111111111111:role/llmops-stg-delivery-promote"]]
    # The promote role lives in staging's foundation stack and may write only promoted/ and its parameter.
    foundation = Template.from_stack(app.node.find_child("staging").foundation)
    (role_id,) = [k for k, r in foundation.find_resources("AWS::IAM::Role").items()
                  if r["Properties"].get("RoleName") == "llmops-stg-delivery-promote"]
    statements = [s for p in foundation.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    by_sid = {s.get("Sid"): s for s in statements}
    assert by_sid["RecordCopies"]["Action"] == "ssm:PutParameter"
    assert "/llmops-stg/delivery/assistant/promoted-model-package-" in json.dumps(by_sid["RecordCopies"]["Resource"])
    assert by_sid["DescribeSources"]["Resource"].endswith(":model-package/llmops-dev-assistant/1")
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert writes and all("/promoted/*" in json.dumps(s["Resource"]) for s in writes)


def test_an_environment_deploying_another_manifest_than_the_pipeline_checks_is_refused():
    from llmops.app import build_app

    raw = raw_config()
    raw["environments"]["prod"]["release"] = "other.json"
    with pytest.raises(ConfigError, match="environments.prod.release: 'other.json' differs from delivery.release_file"):
        build_app(make_app(), config=parse_config(raw), nag=False)
