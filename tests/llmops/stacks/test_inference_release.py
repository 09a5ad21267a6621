"""The inference stack deploys the release manifest's pins when the environment names one; SSM otherwise."""

from __future__ import annotations

import json

import pytest

from llmops.config import ConfigError
from llmops.inference import image
from tests.helpers import synth_stage, template_of

SOURCE_ARN = "arn:aws:sagemaker:us-east-1:444444444444:model-package/llmops-dev-assistant/7"
ONLY = {"capabilities": {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False, "rag": False},
        "inference": {"llm": {"model": {"source": "model-package", "use_case": "assistant"}}}}


def manifest(tmp_path_factory, **changes) -> str:
    lmi = image("djl-lmi")
    data = {
        "schema_version": 1, "name": "r1", "source_environment": "dev", "created": "2026-12-02T00:00:00+00:00",
        "models": {"assistant": {"model_package_arn": SOURCE_ARN, "version": 7, "approval_status": "Approved",
                                 "metrics": {"rouge_l": 0.4}}},
        "images": {"djl-lmi": f"763104351884.dkr.ecr.us-east-1.amazonaws.com/{lmi['repository']}:0.99.0-pinned"},
        **changes,
    }
    path = tmp_path_factory.mktemp("release") / "release.json"
    path.write_text(json.dumps(data))
    return str(path)


def inference(env: str, **overrides):
    merged = json.loads(json.dumps(ONLY))
    merged.update(overrides)
    return template_of(synth_stage(env, merged).inference)


def llm(template, type_):
    return next(r["Properties"] for k, r in template.find_resources(type_).items() if k.startswith("Llm"))


def role_statements(template):
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for k, p in template.find_resources("AWS::IAM::Policy").items()
                if k.startswith("LlmExecutionRole")]
    return [s for doc in policies for s in doc]


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    return inference("staging", release=manifest(tmp_path_factory))


def test_pinned_package_arn_is_in_the_template_without_ssm(pinned):
    raw = pinned.to_json()
    assert not [k for k in raw.get("Parameters", {}) if k.startswith("ApprovedPackage")]
    assert not [k for k in raw.get("Rules", {}) if k.startswith("ApprovedPackage")]
    container = llm(pinned, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert container["ModelPackageName"] == SOURCE_ARN


def test_pinned_package_grants_exactly_that_package_and_the_source_artifacts(pinned):
    by_sid = {s.get("Sid"): s for s in role_statements(pinned)}
    assert by_sid["ReadPinnedPackages"]["Resource"] == SOURCE_ARN
    assert "ReadApprovedPackages" not in by_sid
    s3 = by_sid["ReadReleaseArtifacts444444444444"]
    assert s3["Resource"] == "arn:aws:s3:::llmops-dev-artifacts-444444444444-us-east-1/fine-tuning/*"
    kms = by_sid["DecryptReleaseArtifacts444444444444"]
    assert sorted(kms["Action"]) == ["kms:Decrypt", "kms:DescribeKey"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


def test_serving_image_tag_comes_from_the_release(tmp_path_factory):
    t = inference("staging", release=manifest(tmp_path_factory),
                  inference={"llm": {"model": {"source": "base-model"}}})
    image_value = json.dumps(llm(t, "AWS::SageMaker::Model")["PrimaryContainer"]["Image"])
    assert ":0.99.0-pinned" in image_value
    # The embeddings container is not pinned: it keeps the committed table's tag.
    emb = next(r["Properties"] for k, r in t.find_resources("AWS::SageMaker::Model").items() if k.startswith("Embeddings"))
    assert image("tei-cpu")["tag"] in json.dumps(emb["PrimaryContainer"]["Image"])


def test_without_a_release_the_package_is_read_from_ssm_at_deploy():
    t = inference("staging", release=None)
    raw = t.to_json()
    (param,) = [p for k, p in raw["Parameters"].items() if k.startswith("ApprovedPackage")]
    assert param["Type"] == "AWS::SSM::Parameter::Value<String>"
    container = llm(t, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert container["ModelPackageName"] == {"Ref": next(k for k in raw["Parameters"] if k.startswith("ApprovedPackage"))}
    assert ":0.99.0-pinned" not in json.dumps(raw)


def test_copy_promotion_deploys_this_accounts_copy_named_after_the_source_arn(tmp_path_factory):
    from lambdas.runtime.delivery.model_copy import copied_package_parameter

    t = inference("staging", release=manifest(tmp_path_factory), delivery={"model_promotion": "copy"})
    raw = t.to_json()
    (name,) = [k for k in raw["Parameters"] if k.startswith("PromotedPackage")]
    assert raw["Parameters"][name]["Default"] == copied_package_parameter("llmops-stg", "assistant", SOURCE_ARN)
    assert llm(t, "AWS::SageMaker::Model")["PrimaryContainer"]["ModelPackageName"] == {"Ref": name}
    sids = {s.get("Sid") for s in role_statements(t)}
    assert "ReadPromotedPackages" in sids and not any(str(s).startswith("ReadReleaseArtifacts") for s in sids)


@pytest.mark.parametrize("changes, message", [
    ({"models": {}}, "models.assistant: no pin for the use case"),
    ({"models": {"assistant": {"model_package_arn": SOURCE_ARN, "version": 7, "approval_status": "Rejected"}}},
     "is Rejected, not Approved"),
    ({"images": {"djl-lmi": "763104351884.dkr.ecr.us-east-1.amazonaws.com/other-repo:1"}}, "images.djl-lmi: repository"),
    ({"images": {"nope": "763104351884.dkr.ecr.us-east-1.amazonaws.com/x:1"}}, "images.nope: not a serving container family"),
])
def test_a_release_that_cannot_be_deployed_stops_synth_naming_the_entry(tmp_path_factory, changes, message):
    with pytest.raises(ConfigError, match="environments.staging.release") as err:
        inference("staging", release=manifest(tmp_path_factory, **changes))
    assert message in str(err.value)


def test_the_source_runs_prefix_is_where_fine_tuning_writes():
    from lambdas.runtime.delivery.model_copy import SOURCE_RUNS_PREFIX
    from llmops.stacks.fine_tuning import RUNS_PREFIX

    assert SOURCE_RUNS_PREFIX == RUNS_PREFIX


def test_the_source_key_and_bucket_grant_only_the_reading_accounts_artifact_roles():
    """dev's key: exactly Decrypt/DescribeKey, via S3, for the endpoint and copy roles of staging/prod."""
    foundation = template_of(synth_stage("dev", {"capabilities": {"data_prep": False, "human_review": False, "rag": False}}).foundation)
    (key,) = foundation.find_resources("AWS::KMS::Key").values()
    (statement,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "FineTunedModelReadersDecrypt"]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:DescribeKey"]
    roles = statement["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert {json.dumps(r) for r in roles} == {
        json.dumps({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{a}:role/{p}"]]})
        for a in ("111111111111", "222222222222") for p in ("*-inference-*", "*-delivery-promote")}
    assert "kms:ViaService" in json.dumps(statement["Condition"]["StringEquals"])
    policies = [p for p in foundation.find_resources("AWS::S3::BucketPolicy").values()
                for s in p["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "FineTunedModelReaders"]
    (policy,) = policies
    (bucket_statement,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "FineTunedModelReaders"]
    assert bucket_statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": roles}}


def test_the_embeddings_endpoint_serves_the_released_embedding_model(tmp_path_factory):
    pin = {"model": "BAAI/bge-small-en-v1.5", "dimension": 384, "index": "llmops-dev-rag"}
    t = inference("staging", release=manifest(tmp_path_factory, embedding=pin),
                  inference={"llm": {"model": {"source": "base-model"}}})
    emb = next(r["Properties"] for k, r in t.find_resources("AWS::SageMaker::Model").items() if k.startswith("Embeddings"))
    # The model's files come from the artifacts bucket under base-models/<pinned model>/<revision>/.
    assert "base-models/BAAI/bge-small-en-v1.5/main/" in json.dumps(emb["PrimaryContainer"]["ModelDataSource"])
    unpinned = inference("staging", release=manifest(tmp_path_factory), inference={"llm": {"model": {"source": "base-model"}}})
    emb = next(r["Properties"] for k, r in unpinned.find_resources("AWS::SageMaker::Model").items() if k.startswith("Embeddings"))
    assert "base-models/sentence-transformers/all-MiniLM-L6-v2/main/" in json.dumps(emb["PrimaryContainer"]["ModelDataSource"])


def test_a_bedrock_embedding_model_other_than_the_release_pin_stops_synth(tmp_path_factory):
    from llmops.config import load_config
    from llmops.delivery.release import ReleaseManifest, environment_problems

    env = load_config().get("staging").model_copy(deep=True)
    env = env.model_copy(update={"rag": env.rag.model_copy(update={"embedding_provider": "bedrock",
                                                                    "embedding_model_id": "amazon.titan-embed-text-v2:0"})})
    data = json.loads(open(manifest(tmp_path_factory, embedding={"model": "cohere.embed-english-v3", "dimension": 1024,
                                                                  "index": "i"})).read())
    problems = environment_problems(ReleaseManifest.model_validate(data), env)
    assert any("embedding.model: the release pins cohere.embed-english-v3 but rag.embedding_model_id is "
               "amazon.titan-embed-text-v2:0" in p for p in problems)
