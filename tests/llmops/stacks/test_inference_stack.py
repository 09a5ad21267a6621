"""InferenceStack templates per container family and scaling mode; names stable across synths."""

from __future__ import annotations

import json

import pytest

from tests.helpers import config_with, make_app, synth_stage, template_of

ONLY = {"capabilities": {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False, "rag": False}}


def inference(env: str = "dev", **overrides):
    merged = json.loads(json.dumps(ONLY))
    merged.update(overrides)
    return template_of(synth_stage(env, merged).inference)


def one(template, type_):
    (resource,) = template.find_resources(type_).values()
    return resource["Properties"]


def llm(template, type_):
    return next(r["Properties"] for k, r in template.find_resources(type_).items() if k.startswith("Llm"))


@pytest.fixture(scope="module")
def dev():
    return inference("dev")


@pytest.fixture(scope="module")
def prod():
    return inference("prod")


def test_dev_llm_scales_to_zero_with_inference_components(dev):
    config = llm(dev, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["ManagedInstanceScaling"] == {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 1}
    assert "ModelName" not in variant and config["EnableNetworkIsolation"] is True and "VpcConfig" in config
    component = one(dev, "AWS::SageMaker::InferenceComponent")
    assert component["Specification"]["ComputeResourceRequirements"]["NumberOfAcceleratorDevicesRequired"] == 1
    targets = dev.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    (target,) = [t["Properties"] for t in targets.values()]
    assert target["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount" and target["MinCapacity"] == 0
    policies = [p["Properties"] for p in dev.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    assert {p["PolicyType"] for p in policies} == {"TargetTrackingScaling", "StepScaling"}
    alarms = [a["Properties"] for a in dev.find_resources("AWS::CloudWatch::Alarm").values()]
    no_capacity = [a for a in alarms if a.get("MetricName") == "NoCapacityInvocationFailures"]
    assert no_capacity and no_capacity[0]["AlarmActions"]  # wired to the step policy
    assert "DeploymentConfig" not in llm(dev, "AWS::SageMaker::Endpoint")  # components update in place


def test_dev_llm_model_image_env_and_ami(dev):
    model = llm(dev, "AWS::SageMaker::Model")
    container = model["PrimaryContainer"]
    assert model["EnableNetworkIsolation"] is True and model["VpcConfig"]["Subnets"]
    assert container["Environment"] == {"HF_MODEL_ID": "/opt/ml/model", "TENSOR_PARALLEL_DEGREE": "1"}
    assert "djl-inference:0.38.0-lmi29.0.0-cu130" in json.dumps(container["Image"])
    assert container["ModelDataSource"]["S3DataSource"]["CompressionType"] == "None"
    assert "/base-models/meta-llama/Llama-3.2-1B-Instruct/main/" in json.dumps(container["ModelDataSource"])
    (variant,) = llm(dev, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["InferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert dev.to_json()["Mappings"]["ImageRegistryDjllmi"]["us-east-1"]["account"] == "763104351884"


def test_capture_and_nvme_volume_key(prod):
    config = llm(prod, "AWS::SageMaker::EndpointConfig")
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100 and "/capture/" in json.dumps(capture["DestinationS3Uri"])
    assert capture["CaptureContentTypeHeader"]["JsonContentTypes"] == ["application/json", "application/jsonlines"]
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"] and capture["KmsKeyId"]
    assert "KmsKeyId" not in config  # ml.g5 has NVMe instance storage: a volume key is rejected
    inf2 = inference("prod", inference={"llm": {"container": "tgi-neuronx", "instance_type": "ml.inf2.xlarge"}})
    config = llm(inf2, "AWS::SageMaker::EndpointConfig")
    assert config["KmsKeyId"] and config["ProductionVariants"][0]["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-neuron-2"
    env = llm(inf2, "AWS::SageMaker::Model")["PrimaryContainer"]["Environment"]
    assert env == {"HF_MODEL_ID": "/opt/ml/model", "HF_NUM_CORES": "2"}
    assert "huggingface-pytorch-tgi-inference:2.7.0-optimum3.3.6-inf2" in json.dumps(llm(inf2, "AWS::SageMaker::Model"))


def test_prod_blue_green_rollback_and_target_tracking(prod):
    endpoint = llm(prod, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == "llmops-prd-llm" and endpoint["RetainAllVariantProperties"] is True
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert len(rollback) == 2 and "BlueGreenUpdatePolicy" in endpoint["DeploymentConfig"]
    target = next(t["Properties"] for t in prod.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values())
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    assert target["ResourceId"] == "endpoint/llmops-prd-llm/variant/primary"
    (policy,) = [p["Properties"] for p in prod.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    spec = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


@pytest.mark.parametrize("container, image_part, env_keys", [
    ("djl-tensorrtllm", "djl-inference:0.33.0-tensorrtllm", {"HF_MODEL_ID", "TENSOR_PARALLEL_DEGREE", "OPTION_MAX_NUM_TOKENS"}),
    ("vllm", "vllm:0.30.0-gpu-py312-cu130", {"SM_VLLM_MODEL", "SM_VLLM_TENSOR_PARALLEL_SIZE", "SM_VLLM_MAX_MODEL_LEN"}),
    ("tgi", "huggingface-pytorch-tgi-inference:2.7.0-tgi3.3.6-gpu", {"HF_MODEL_ID", "SM_NUM_GPUS", "MAX_INPUT_TOKENS"}),
])
def test_container_families(container, image_part, env_keys):
    settings = {"djl-tensorrtllm": {"OPTION_MAX_NUM_TOKENS": 8192}, "vllm": {"SM_VLLM_MAX_MODEL_LEN": 4096},
                "tgi": {"MAX_INPUT_TOKENS": 2048}}[container]
    t = inference("prod", inference={"llm": {"container": container, "settings": settings}})
    model = llm(t, "AWS::SageMaker::Model")
    assert image_part in json.dumps(model["PrimaryContainer"]["Image"])
    assert set(model["PrimaryContainer"]["Environment"]) == env_keys
    assert all(isinstance(v, str) for v in model["PrimaryContainer"]["Environment"].values())


def test_variants_and_shadow():
    t = inference("prod", inference={"llm": {"variants": {"blue": {"weight": 9}, "shadow": {"shadow": True, "instance_type": "ml.g6.2xlarge"}}}})
    config = llm(t, "AWS::SageMaker::EndpointConfig")
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["blue"]
    assert config["ProductionVariants"][0]["InitialVariantWeight"] == 9
    (shadow,) = config["ShadowProductionVariants"]
    assert shadow["VariantName"] == "shadow" and shadow["InstanceType"] == "ml.g6.2xlarge"
    assert len([k for k in t.find_resources("AWS::SageMaker::Model") if k.startswith("Llm")]) == 2


def test_async_scales_from_zero_on_backlog():
    t = inference("prod", inference={"llm": {"async_inference": {"enabled": True}}})
    config = llm(t, "AWS::SageMaker::EndpointConfig")
    assert "/async-inference/output/" in json.dumps(config["AsyncInferenceConfig"]["OutputConfig"])
    target = next(x["Properties"] for x in t.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values())
    assert target["MinCapacity"] == 0
    alarms = [a["Properties"] for a in t.find_resources("AWS::CloudWatch::Alarm").values()]
    assert any(a.get("MetricName") == "HasBacklogWithoutCapacity" for a in alarms)


def test_approved_package_resolved_at_deploy_with_a_rule():
    # Without a release manifest (test_inference_release.py covers the pinned path).
    t = inference("prod", inference={"llm": {"model": {"source": "model-package", "use_case": "assistant"}}}, release=None)
    raw = t.to_json()
    (param,) = [p for k, p in raw["Parameters"].items() if k.startswith("ApprovedPackage")]
    assert param["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert param["Default"] == "/llmops-prd/fine-tuning/assistant/approved-model-package-arn"
    (rule,) = [r for k, r in raw["Rules"].items() if k.startswith("ApprovedPackage")]
    text = json.dumps(rule)
    assert "approved-model-package-arn" in text and "update-model-package" in text
    container = llm(t, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert "ModelPackageName" in container and "Image" not in container


def test_embeddings_serverless_in_dev_and_instances_in_prod(dev, prod):
    config = next(r["Properties"] for k, r in dev.find_resources("AWS::SageMaker::EndpointConfig").items() if k.startswith("Embeddings"))
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    config = next(r["Properties"] for k, r in prod.find_resources("AWS::SageMaker::EndpointConfig").items() if k.startswith("Embeddings"))
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge" and config["KmsKeyId"] and config["DataCaptureConfig"]


def test_alarms_notify_and_dashboard(prod):
    alarms = [a["Properties"] for a in prod.find_resources("AWS::CloudWatch::Alarm").values()]
    names = {a["MetricName"] for a in alarms}
    assert {"Invocation5XXErrors", "ModelLatency", "GPUMemoryUtilization"} <= names
    assert all(a.get("AlarmActions") for a in alarms)
    # One dashboard per environment: with monitoring on, the environment dashboard shows the endpoints.
    assert not prod.find_resources("AWS::CloudWatch::Dashboard")


def test_names_stable_across_synths_and_change_with_the_config():
    from llmops.stage import LlmOpsStage
    from aws_cdk.assertions import Template

    def names(overrides):
        app = make_app()
        stage = LlmOpsStage(app, config_with("prod", {**ONLY, **overrides}).get("prod"), nag=False)
        t = Template.from_stack(stage.inference)
        return sorted(r["Properties"]["EndpointConfigName"] for r in t.find_resources("AWS::SageMaker::EndpointConfig").values()) + \
            sorted(r["Properties"]["ModelName"] for r in t.find_resources("AWS::SageMaker::Model").values())

    first, second = names({}), names({})
    assert first == second
    changed = names({"inference": {"llm": {"settings": {"OPTION_MAX_MODEL_LEN": 2048}}}})
    assert changed != first and all(n.startswith("llmops-prd-") and len(n) <= 63 for n in changed)
