"""The pipeline definitions: structure, committed files in sync, determinism, no network."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from functools import lru_cache

import pytest

from llmops.config import ConfigError, load_config
from pipelines import profiles
from pipelines.build import DEFINITIONS_DIR, PLACEHOLDERS, build_definitions, render
from tests.helpers import config_with

# Not importorskip: the SDK must be imported by build_definitions, after it sets the region.
if importlib.util.find_spec("sagemaker") is None:
    pytest.skip("the pipeline-build extra (sagemaker SDK) is not installed", allow_module_level=True)
CONFIG = load_config()
# One worker builds (and caches) the definitions for the whole module under `pytest -n --dist loadgroup`.
pytestmark = pytest.mark.xdist_group("fine-tuning-build")


@lru_cache(maxsize=None)
def built(env_name: str = "dev", overrides_json: str = "{}") -> dict:
    config = config_with(env_name, json.loads(overrides_json)) if overrides_json != "{}" else CONFIG
    return build_definitions(config.get(env_name))


def definition(env_name: str = "dev", use_case: str = "assistant", **overrides) -> dict:
    return json.loads(built(env_name, json.dumps(overrides, sort_keys=True))["pipelines"][use_case])


def steps_by_name(defn: dict) -> dict:
    found = {}
    for step in defn["Steps"]:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            for child in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                found[child["Name"]] = child
    return found


@pytest.mark.parametrize("env_name", sorted(CONFIG.environments))
def test_committed_definitions_match_a_fresh_build(env_name):
    path = DEFINITIONS_DIR / f"{env_name}.json"
    assert path.read_text(encoding="utf-8") == render(built(env_name)), (
        f"{path.name} is stale: run `llmops pipelines build` and commit the result"
    )


def test_steps_and_their_dependencies():
    steps = steps_by_name(definition())
    assert [s["Name"] for s in definition()["Steps"]] == ["Prepare", "Train", "Evaluate", "CheckThresholds"]
    assert {n: s["Type"] for n, s in steps.items()} == {
        "Prepare": "Processing", "Train": "Training", "Evaluate": "Processing",
        "CheckThresholds": "Condition", "Register": "RegisterModel", "QualityGateFailed": "Fail",
    }
    text = json.dumps(definition())
    # Data dependencies chain the steps: train reads prepare's output, evaluate reads both.
    train_inputs = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    assert train_inputs["train"] == {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['prepared'].S3Output.S3Uri"}
    eval_inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert eval_inputs["model"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    gate = steps["CheckThresholds"]["Arguments"]["Conditions"][0]
    assert gate["LeftValue"]["Std:JsonGet"]["Path"] == "check.passed" and gate["RightValue"] is True
    assert "check.reason" in json.dumps(steps["QualityGateFailed"]["Arguments"]["ErrorMessage"])
    register = steps["Register"]["Arguments"]
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    assert register["ModelPackageGroupName"] == "llmops-dev-assistant"
    assert "evaluation.json" in json.dumps(register["ModelMetrics"]["ModelQuality"]["Statistics"])
    assert "Steps.Train.ModelArtifacts.S3ModelArtifacts" in json.dumps(register["InferenceSpecification"])
    assert "sagemaker-" not in text.replace("sagemaker-mlflow", "")  # no SDK default bucket leaked in


def test_parameters_cover_everything_a_run_may_vary():
    params = {p["Name"]: p for p in definition()["Parameters"]}
    ft = CONFIG.get("dev").fine_tuning
    expected = {
        "DatasetName": "assistant", "DatasetVersion": 1, "DatasetManifestKey": "none", "Strategy": ft.strategy,
        "Epochs": ft.epochs, "LearningRate": ft.learning_rate, "LoraRank": ft.lora.rank, "LoraAlpha": ft.lora.alpha,
        "LoraDropout": ft.lora.dropout, "MaxLength": ft.max_length, "TrainingInstanceType": "ml.g5.2xlarge",
        "TrainingInstanceCount": 1, "EvaluationInstanceType": "ml.g5.2xlarge", "MinRougeL": ft.thresholds.min_rouge_l,
        "MinBleu": 0.0, "MinExactMatch": 0.0, "MinTokenF1": 0.0, "MinAccuracy": 0.0, "MinF1": 0.0, "MaxPerplexity": 0.0,
    }
    assert {k: params[k]["DefaultValue"] for k in expected} == expected
    assert params["Strategy"]["EnumValues"] == ["full", "lora", "qlora"]
    assert "ml.trn1.32xlarge" not in params["TrainingInstanceType"]["EnumValues"]  # GPU image: GPU types only
    assert params["BaseModelUri"]["DefaultValue"] == "s3://${ArtifactsBucket}/base-models/meta-llama/Llama-3.2-1B-Instruct/"
    hyper = steps_by_name(definition())["Train"]["Arguments"]["HyperParameters"]
    assert hyper["lora_r"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.LoraRank"}]}}
    assert hyper["strategy"] == {"Get": "Parameters.Strategy"}


def test_gpu_profile_uses_the_hugging_face_training_image_in_the_vpc_with_cmk_and_isolation():
    train = steps_by_name(definition())["Train"]["Arguments"]
    image = train["AlgorithmSpecification"]["TrainingImage"]
    assert image.startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:2.8.0-transformers4.56.2-gpu")
    assert train["EnableNetworkIsolation"] is True
    assert train["VpcConfig"] == {"SecurityGroupIds": ["${SecurityGroupId}"], "Subnets": ["${SubnetIds}"]}
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == train["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert train["HyperParameters"]["sagemaker_submit_directory"] == "/opt/ml/input/data/code/${CodeFile}"
    # One instance, but a run may pick a 4- or 8-GPU node: torchrun starts one process per GPU there.
    assert train["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert "fsdp" not in train["HyperParameters"]
    code = [c for c in train["InputDataConfig"] if c["ChannelName"] == "code"][0]
    assert code["DataSource"]["S3DataSource"]["S3Uri"] == "s3://${CodeBucket}/${CodeKey}"
    # dev: spot with checkpoints; prod: on-demand.
    assert train["EnableManagedSpotTraining"] is True and "CheckpointConfig" in train
    assert train["StoppingCondition"]["MaxWaitTimeInSeconds"] >= train["StoppingCondition"]["MaxRuntimeInSeconds"]
    prod = steps_by_name(definition("prod"))["Train"]["Arguments"]
    assert "EnableManagedSpotTraining" not in prod and "CheckpointConfig" not in prod


def test_instance_count_above_one_turns_on_torchrun_and_fsdp_on_request():
    ddp = steps_by_name(definition(fine_tuning={"instance_type": "ml.p4d.24xlarge", "instance_count": 2}))["Train"]["Arguments"]
    assert ddp["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert "fsdp" not in ddp["HyperParameters"]
    assert ddp["EnableInterContainerTrafficEncryption"] is True
    fsdp = steps_by_name(definition(fine_tuning={"instance_type": "ml.p5.48xlarge", "instance_count": 4, "distribution": "fsdp", "strategy": "full"}))
    assert fsdp["Train"]["Arguments"]["HyperParameters"]["fsdp"] == "full_shard auto_wrap"
    params = {p["Name"]: p["DefaultValue"] for p in definition(fine_tuning={"instance_type": "ml.p5.48xlarge", "instance_count": 4, "distribution": "fsdp", "strategy": "full"})["Parameters"]}
    assert params["TrainingInstanceCount"] == 4 and params["TrainingInstanceType"] == "ml.p5.48xlarge"


def test_trainium_profile_uses_the_pinned_neuron_image():
    defn = definition(fine_tuning={"instance_type": "ml.trn1.32xlarge", "instance_count": 2})
    train = steps_by_name(defn)["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == profiles.neuron_training_image("us-east-1")
    assert "huggingface-pytorch-training-neuronx:" in train["AlgorithmSpecification"]["TrainingImage"]
    assert train["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    params = {p["Name"]: p for p in defn["Parameters"]}
    assert set(params["TrainingInstanceType"]["EnumValues"]) == set(profiles.TRAINIUM_INSTANCE_TYPES)


def test_training_is_network_isolated_and_the_mlflow_switch_is_gone():
    # The switch only turned isolation off: the jobs had no MLflow client nor route (issue 10).
    train = steps_by_name(definition())["Train"]["Arguments"]
    assert train["EnableNetworkIsolation"] is True
    assert not any(k.startswith("MLFLOW") for k in train["Environment"])
    with pytest.raises(ConfigError, match=r"environments.dev.fine_tuning: mlflow: removed; the training jobs run network-isolated"):
        config_with("dev", {"fine_tuning": {"mlflow": {"enabled": False}}})


def test_only_known_placeholders_remain():
    import re

    for env_name in CONFIG.environments:
        for text in built(env_name)["pipelines"].values():
            assert set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text)) <= set(PLACEHOLDERS)
            assert "sentinel" not in text


def test_two_builds_are_byte_identical_in_fresh_processes():
    script = (
        "from llmops.config import load_config; from pipelines.build import build_definitions, render;"
        "import sys; c=load_config(); sys.stdout.write(''.join(render(build_definitions(c.get(e))) for e in sorted(c.environments)))"
    )
    outputs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout for _ in range(2)]
    assert outputs[0] == outputs[1] and len(outputs[0]) > 10000


def test_build_makes_no_network_connection(monkeypatch):
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network blocked in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    result = build_definitions(config_with("staging", {"fine_tuning": {"epochs": 5}}).get("staging"))
    assert attempts == []
    assert json.loads(result["pipelines"]["assistant"])["Parameters"][5]["DefaultValue"] == 5
