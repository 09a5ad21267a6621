"""Build the fine-tuning pipeline definitions with the SageMaker Python SDK 3, offline.

``llmops pipelines build`` (``llmops/cli/pipelines.py``, which reads the config and hands each
environment to ``build_definitions``) writes ``pipelines/definitions/<env>.json`` for every environment in
``config/environments.yaml``; the files are committed, and ``cdk synth`` reads them (no SDK import,
no network at synth). ``tests/pipelines/test_build.py`` rebuilds them and fails on any drift, and
the stack refuses a file whose config fingerprint no longer matches the config.

Values only known at deploy time are ``${Name}`` placeholders that the CDK construct fills in
with ``Fn::Sub``: see PLACEHOLDERS.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


from . import profiles

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"
CODE_ENTRYPOINTS = {"train": "train_entry.py"}

# ${Name} -> what the construct substitutes at synth.
PLACEHOLDERS = {
    "RoleArn": "the SageMaker execution role ARN",
    "ArtifactsBucket": "the foundation artifacts bucket name",
    "DataBucket": "the foundation data bucket name",
    "KmsKeyArn": "the environment CMK ARN",
    "CodeBucket": "bucket of the step-code archive (CDK asset)",
    "CodeKey": "object key of the step-code archive (CDK asset)",
    "CodeFile": "file name of the step-code archive inside the code channel (last part of CodeKey)",
    "SecurityGroupId": "security group of the pipeline jobs",
    "SubnetIds": "expanded by the construct into one placeholder per isolated subnet",
}
# The SDK looks a role up in IAM unless it is a full ARN, so the build uses this one and the
# serialised definition swaps it for ${RoleArn}.
ROLE_SENTINEL = "arn:aws:iam::000000000000:role/llmops-pipeline-execution-role"
# Likewise the session's default bucket: set on the session (not through the constructor, which
# makes the SDK check the bucket exists with S3 calls), then swapped for ${ArtifactsBucket}.
BUCKET_SENTINEL = "llmops-artifacts-bucket-sentinel"
# A non-s3:// code location is taken for a local path and uploaded at build time.
CODE_SENTINEL = "s3://llmops-code-bucket-sentinel/llmops-code-key-sentinel"
SENTINELS = {
    ROLE_SENTINEL: "${RoleArn}",
    BUCKET_SENTINEL: "${ArtifactsBucket}",
    CODE_SENTINEL: "s3://${CodeBucket}/${CodeKey}",
}


def _offline_environment(region: str) -> None:
    # Set before the SDK import: region, no role validation, no telemetry, no config-file lookups.
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    os.environ.setdefault("SAGEMAKER_TELEMETRY_OPT_OUT", "true")
    os.environ.setdefault("SAGEMAKER_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "offline-build")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "offline-build")


def _p(name: str) -> str:
    return "${" + name + "}"


def build_pipeline(env: Any, use_case: str):
    """The SDK ``Pipeline`` object for one use case of one environment (not yet serialised)."""
    import boto3
    from sagemaker.core import image_uris
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import Processor
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train import ModelTrainer

    ft = env.fine_tuning
    case = ft.use_cases[use_case]
    hw = profiles.hardware_profile(env)
    region = env.region
    session = PipelineSession(boto_session=boto3.Session(region_name=region))
    session._default_bucket = BUCKET_SENTINEL  # else default_bucket() lists and creates buckets
    role = ROLE_SENTINEL
    kms = _p("KmsKeyArn")
    run_prefix = ["s3://", _p("ArtifactsBucket"), "/fine-tuning/", use_case, "/", ExecutionVariables.PIPELINE_EXECUTION_ID]

    # --- parameters: everything a run may vary -------------------------------------------------
    dataset_name = ParameterString("DatasetName", default_value=case.dataset)
    dataset_version = ParameterInteger("DatasetVersion", default_value=1)
    # Set by the new-dataset-version trigger (EventBridge passes the manifest's key); wins when set.
    manifest_key = ParameterString("DatasetManifestKey", default_value="none")
    base_model = case.base_model or ft.base_model
    base_model_uri = ParameterString(
        "BaseModelUri", default_value=f"s3://{_p('ArtifactsBucket')}/base-models/{base_model}/"
    )
    strategy = ParameterString("Strategy", default_value=ft.strategy, enum_values=["full", "lora", "qlora"])
    epochs = ParameterInteger("Epochs", default_value=ft.epochs)
    learning_rate = ParameterFloat("LearningRate", default_value=ft.learning_rate)
    lora_rank = ParameterInteger("LoraRank", default_value=ft.lora.rank)
    lora_alpha = ParameterInteger("LoraAlpha", default_value=ft.lora.alpha)
    lora_dropout = ParameterFloat("LoraDropout", default_value=ft.lora.dropout)
    max_length = ParameterInteger("MaxLength", default_value=ft.max_length)
    instance_type = ParameterString(
        "TrainingInstanceType", default_value=hw.instance_type, enum_values=list(hw.allowed_instance_types)
    )
    instance_count = ParameterInteger("TrainingInstanceCount", default_value=hw.instance_count)
    eval_instance_type = ParameterString("EvaluationInstanceType", default_value=ft.evaluation_instance_type)
    thresholds = {
        name: ParameterFloat("".join(part.capitalize() for part in name.split("_")), default_value=value)
        for name, value in ft.thresholds.model_dump().items()
    }
    parameters = [
        dataset_name, dataset_version, manifest_key, base_model_uri, strategy, epochs, learning_rate,
        lora_rank, lora_alpha, lora_dropout, max_length, instance_type, instance_count,
        eval_instance_type, *thresholds.values(),
    ]

    # --- images ----------------------------------------------------------------------------------
    gpu_training_image = image_uris.retrieve(
        "huggingface",
        region=region,
        version=profiles.HF_TRAINING["version"],
        base_framework_version=profiles.HF_TRAINING["base_framework_version"],
        py_version=profiles.HF_TRAINING["py_version"],
        instance_type="ml.g5.2xlarge",
        image_scope="training",
    )
    training_image = profiles.neuron_training_image(region) if hw.kind == "trainium" else gpu_training_image
    if ft.serving_image == "tgi":
        serving_image = image_uris.retrieve(
            "huggingface-llm", region=region, version=profiles.TGI_VERSION,
            image_scope="inference", instance_type="ml.g5.2xlarge",
        )
    else:
        serving_image = image_uris.retrieve(
            "djl-lmi", region=region, version=profiles.DJL_LMI_VERSION,
            image_scope="inference", instance_type="ml.g5.2xlarge",
        )

    subnets = [_p("SubnetIds")]
    security_groups = [_p("SecurityGroupId")]
    code_input = ProcessingInput(
        input_name="code",
        s3_input=ProcessingS3Input(
            s3_uri=CODE_SENTINEL, local_path="/opt/ml/processing/input/code",
            s3_data_type="S3Prefix", s3_input_mode="File",
        ),
    )

    def step_command(module: str) -> list[str]:
        # Unpack the code archive, install its vendored wheels offline (the jobs have no internet;
        # pip skips what the image already has), then run the step; "$@" carries the arguments.
        return [
            "/bin/bash", "-c",
            "set -euo pipefail; mkdir -p /opt/ml/code; "
            f"tar -xzf /opt/ml/processing/input/code/{_p('CodeFile')} -C /opt/ml/code; "
            "cd /opt/ml/code; python3 -m pip install --quiet --no-index --no-cache-dir --disable-pip-version-check "
            "--find-links wheels -r pipelines/step-requirements.txt; "
            f'exec python3 -m pipelines.steps.{module} "$@"',
            module,
        ]

    def processor(name: str, instance: Any, module: str) -> Processor:
        return Processor(
            role=role,
            image_uri=gpu_training_image,
            instance_count=1,
            instance_type=instance,
            entrypoint=step_command(module),
            volume_size_in_gb=ft.volume_size_gb,
            volume_kms_key=kms,
            output_kms_key=kms,
            max_runtime_in_seconds=ft.max_runtime_hours * 3600,
            base_job_name=f"{env.name_prefix}-{name}",
            sagemaker_session=session,
            network_config=NetworkConfig(
                enable_network_isolation=False,  # prepare reads the dataset and tokenizer from S3 itself
                encrypt_inter_container_traffic=True,
                security_group_ids=security_groups,
                subnets=subnets,
            ),
            env={"PYTHONUNBUFFERED": "1"},
        )

    # --- prepare ---------------------------------------------------------------------------------
    dataset_uri = Join(on="", values=["s3://", _p("DataBucket"), "/datasets/", dataset_name, "/v", dataset_version.to_string(), "/"])
    prepare_report = PropertyFile(name="PrepareReport", output_name="prepared", path="prepare_report.json")
    prepare_args = processor("ft-prepare", ft.prepare_instance_type, "prepare").run(
        inputs=[code_input],
        outputs=[
            ProcessingOutput(
                output_name="prepared",
                s3_output=ProcessingS3Output(
                    s3_uri=Join(on="", values=[*run_prefix, "/prepared"]),
                    local_path="/opt/ml/processing/output/prepared",
                    s3_upload_mode="EndOfJob",
                ),
            )
        ],
        arguments=["--dataset-uri", dataset_uri, "--manifest-key", manifest_key, "--model-uri", base_model_uri,
                   "--output-dir", "/opt/ml/processing/output/prepared"],
    )
    prepare = ProcessingStep(name="Prepare", step_args=prepare_args, property_files=[prepare_report],
                             description="validate, split and template the dataset version")
    prepared_uri = prepare.properties.ProcessingOutputConfig.Outputs["prepared"].S3Output.S3Uri

    # --- train -----------------------------------------------------------------------------------
    hyperparameters: dict[str, Any] = {
        "sagemaker_program": CODE_ENTRYPOINTS["train"],
        "sagemaker_submit_directory": f"/opt/ml/input/data/code/{_p('CodeFile')}",
        "sagemaker_region": region,
        "sagemaker_container_log_level": "20",
        "strategy": strategy,
        "epochs": epochs.to_string(),
        "learning_rate": learning_rate.to_string(),
        "lora_r": lora_rank.to_string(),
        "lora_alpha": lora_alpha.to_string(),
        "lora_dropout": lora_dropout.to_string(),
        "max_length": max_length.to_string(),
        "merge_weights": "true",
        "gradient_checkpointing": "true",
    }
    if hw.distributed:
        # The training toolkit's distribution switch (the SDK 2 estimator's
        # distribution={"torch_distributed": {"enabled": True}}): torchrun on every node, one process
        # per GPU / NeuronCore of the node the run got (the toolkit counts them; 1 on a 1-GPU node).
        hyperparameters["sagemaker_torch_distributed_enabled"] = "true"
        if hw.distribution == "fsdp":
            hyperparameters["fsdp"] = "full_shard auto_wrap"
    environment = {"PYTHONUNBUFFERED": "1"}
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=role,
        training_image=training_image,
        base_job_name=f"{env.name_prefix}-ft-train",
        compute=Compute(
            instance_type=instance_type,
            instance_count=instance_count,
            volume_size_in_gb=ft.volume_size_gb,
            volume_kms_key_id=kms,
            enable_managed_spot_training=ft.spot.enabled or None,
        ),
        networking=Networking(
            subnets=subnets,
            security_group_ids=security_groups,
            # The container reaches nothing but its channels (no MLflow or other network logging).
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=ft.max_runtime_hours * 3600,
            max_wait_time_in_seconds=ft.spot.max_wait_hours * 3600 if ft.spot.enabled else None,
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=Join(on="", values=[*run_prefix, "/model"]), kms_key_id=kms
        ),
        checkpoint_config=CheckpointConfig(
            s3_uri=Join(on="", values=[*run_prefix, "/checkpoints"]), local_path="/opt/ml/checkpoints"
        ) if ft.spot.enabled else None,
        hyperparameters=hyperparameters,
        environment=environment,
    )
    train_args = trainer.train(
        input_data_config=[
            InputData(channel_name="train", data_source=prepared_uri),
            InputData(channel_name="model", data_source=base_model_uri),
            InputData(channel_name="code", data_source=CODE_SENTINEL),
        ]
    )
    train = TrainingStep(name="Train", step_args=train_args, description="fine-tune (full, LoRA or QLoRA)")
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    # --- evaluate --------------------------------------------------------------------------------
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    threshold_args: list[Any] = []
    for name, param in thresholds.items():
        threshold_args += [f"--{name.replace('_', '-')}", param.to_string()]
    evaluate_args = processor("ft-evaluate", eval_instance_type, "evaluate").run(
        inputs=[
            code_input,
            ProcessingInput(
                input_name="model",
                s3_input=ProcessingS3Input(s3_uri=model_data, local_path="/opt/ml/processing/input/model", s3_data_type="S3Prefix", s3_input_mode="File"),
            ),
            ProcessingInput(
                input_name="prepared",
                s3_input=ProcessingS3Input(s3_uri=prepared_uri, local_path="/opt/ml/processing/input/prepared", s3_data_type="S3Prefix", s3_input_mode="File"),
            ),
        ],
        outputs=[
            ProcessingOutput(
                output_name="evaluation",
                s3_output=ProcessingS3Output(
                    s3_uri=Join(on="", values=[*run_prefix, "/evaluation"]),
                    local_path="/opt/ml/processing/output/evaluation",
                    s3_upload_mode="EndOfJob",
                ),
            )
        ],
        arguments=["--model-dir", "/opt/ml/processing/input/model", "--data-dir", "/opt/ml/processing/input/prepared",
                   "--output-dir", "/opt/ml/processing/output/evaluation", *threshold_args],
    )
    evaluate = ProcessingStep(name="Evaluate", step_args=evaluate_args, property_files=[report],
                              description="perplexity, ROUGE-L, BLEU, EM, token F1 / accuracy, P, R, F1")
    report_uri = Join(on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"])

    # --- register or fail ------------------------------------------------------------------------
    builder = ModelBuilder(
        image_uri=serving_image,
        s3_model_data_url=model_data,
        role_arn=role,
        sagemaker_session=session,
        env_vars={"HF_MODEL_ID": "/opt/ml/model"} if ft.serving_image == "tgi" else {"OPTION_MODEL_ID": "/opt/ml/model"},
    )
    register_args = builder.register(
        model_package_group_name=profiles.model_package_group_name(env, use_case),
        approval_status="PendingManualApproval",
        content_types=["application/json"],
        response_types=["application/json"],
        inference_instances=[env.instances.inference.type],
        model_metrics=ModelMetrics(model_statistics=MetricsSource(content_type="application/json", s3_uri=report_uri)),
        customer_metadata_properties={
            # From the prepare report: right whether a run named the version or the trigger passed a key.
            "dataset": Join(on="", values=[JsonGet(step_name=prepare.name, property_file=prepare_report, json_path="dataset")]),
            "dataset_version": Join(on="", values=[JsonGet(step_name=prepare.name, property_file=prepare_report, json_path="version")]),
            "strategy": strategy,
            "base_model": base_model_uri,
        },
    )
    register = ModelStep(name="Register", step_args=register_args)
    fail = FailStep(
        name="QualityGateFailed",
        error_message=Join(on="", values=["evaluation below the thresholds: ", JsonGet(step_name=evaluate.name, property_file=report, json_path="check.reason")]),
    )
    gate = ConditionStep(
        name="CheckThresholds",
        conditions=[ConditionEquals(left=JsonGet(step_name=evaluate.name, property_file=report, json_path="check.passed"), right=True)],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        name=profiles.pipeline_name(env, use_case),
        parameters=parameters,
        steps=[prepare, train, evaluate, gate],
        sagemaker_session=session,
    )


def build_definitions(env: Any) -> dict[str, Any]:
    """``{"fingerprint", "sdk", "pipelines": {use_case: definition JSON string}}`` for one environment."""
    from importlib.metadata import version

    _offline_environment(env.region or "")
    profiles.definition_inputs(env)  # fails early, naming the field, on a config the builder cannot use
    definitions = {}
    for use_case in sorted(env.fine_tuning.use_cases):
        definition = build_pipeline(env, use_case).definition()
        for sentinel, placeholder in SENTINELS.items():
            definition = definition.replace(sentinel, placeholder)
        # Re-serialise canonically: stable key order makes the committed file diff-friendly.
        definitions[use_case] = json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))
    return {"fingerprint": profiles.fingerprint(env), "sdk": f"sagemaker {version('sagemaker')}", "pipelines": definitions}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"
