"""FineTuningPipeline: a compiled SageMaker Pipeline definition deployed as AWS::SageMaker::Pipeline.

The definition is compiled offline by ``llmops pipelines build`` (``pipelines/build.py``, SageMaker SDK 3) into
``pipelines/definitions/<env>.json``; at synth this construct only fills the ``${Name}``
placeholders with ``Fn::Sub``, so synth imports no SageMaker SDK and makes no network call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.config import REPO_ROOT, ConfigError, EnvironmentConfig
from pipelines.profiles import ProfileError, fingerprint

DEFINITIONS_DIR = REPO_ROOT / "pipelines" / "definitions"
_PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z0-9]+)\}")
PLACEHOLDER_NAMES = frozenset(
    {"RoleArn", "ArtifactsBucket", "DataBucket", "KmsKeyArn", "CodeBucket", "CodeKey", "CodeFile",
     "SecurityGroupId", "SubnetIds"}
)


def load_compiled_definitions(env: EnvironmentConfig, directory: Path | None = None) -> dict[str, str]:
    """The environment's compiled definitions ``{use_case: json}``, refusing a stale or missing file."""
    path = (directory or DEFINITIONS_DIR) / f"{env.name}.json"
    rebuild = "run `llmops pipelines build` (needs the pipeline-build extra) and commit the result"
    if not path.is_file():
        raise ConfigError(f"environments.{env.name}.fine_tuning: no compiled pipeline definition at {path}; {rebuild}")
    document = json.loads(path.read_text(encoding="utf-8"))
    try:
        current = fingerprint(env)
    except ProfileError as err:  # the profile names the field; synth reports config errors one way
        raise ConfigError(str(err)) from None
    if document.get("fingerprint") != current:
        raise ConfigError(
            f"environments.{env.name}.fine_tuning: {path.name} was compiled from a different configuration; {rebuild}"
        )
    return dict(document["pipelines"])


# Step types whose request starts a job that bills by the hour (CreateTrainingJob, CreateProcessingJob, ...).
JOB_STEP_TYPES = ("Training", "Processing", "Transform", "Tuning")


def tag_job_steps(definition: str, tags: Mapping[str, str]) -> str:
    """``definition`` with ``tags`` in the ``Tags`` of every job step's request, nested steps included.

    The SDK 3 ModelTrainer takes no tags, and a pipeline's own tags are not copied onto the jobs it
    starts (they get only ``sagemaker:pipeline-*`` tags), so cost allocation needs them here. A tag
    the step already carries keeps its value.
    """
    if len(tags) > 50:
        raise ValueError(f"tags: SageMaker jobs take at most 50 tags, got {len(tags)}")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256 or key.lower().startswith("aws:"):
            raise ValueError(f"tags.{key}: a job tag key is 1-128 characters not starting with 'aws:', its value at most 256")
    document = json.loads(definition)

    def walk(steps: list) -> None:
        for step in steps:
            if step.get("Type") in JOB_STEP_TYPES:
                arguments = step.setdefault("Arguments", {})
                present = {t["Key"] for t in arguments.get("Tags", [])}
                # "${" would be read as a placeholder by Fn::Sub: "${!" keeps it literal.
                extra = [{"Key": k.replace("${", "${!"), "Value": v.replace("${", "${!")}
                         for k, v in sorted(tags.items()) if k not in present]
                if extra:
                    arguments["Tags"] = [*arguments.get("Tags", []), *extra]
            arguments = step.get("Arguments", {})
            for branch in ("IfSteps", "ElseSteps"):
                walk(arguments.get(branch, []))

    walk(document.get("Steps", []))
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


class FineTuningPipeline(Construct):
    """One use case's pipeline: prepare -> train -> evaluate -> check -> register (or fail)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        definition: str,
        role: iam.IRole,
        artifacts_bucket_name: str,
        data_bucket_name: str,
        key_arn: str,
        code: s3_assets.Asset,
        subnet_ids: Sequence[str],
        security_group_id: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if tags:
            # The environment's cost tags on every training/processing job the pipeline starts.
            definition = tag_job_steps(definition, tags)
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", pipeline_name):
            raise ValueError(f"pipeline_name: {pipeline_name!r} is not a valid SageMaker pipeline name")
        if not subnet_ids:
            raise ValueError("subnet_ids: the pipeline's jobs run in the VPC and need at least one subnet")
        used = set(_PLACEHOLDER_RE.findall(definition))
        unknown = used - PLACEHOLDER_NAMES
        if unknown:
            raise ValueError(f"definition: unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(PLACEHOLDER_NAMES)}")

        # One "${SubnetIds}" list element becomes one placeholder per subnet.
        subnet_vars = {f"Subnet{i}": subnet for i, subnet in enumerate(subnet_ids)}
        body = definition.replace('"${SubnetIds}"', ",".join(f'"${{{name}}}"' for name in subnet_vars))
        code_key = code.s3_object_key
        variables: dict[str, str] = {
            "RoleArn": role.role_arn,
            "ArtifactsBucket": artifacts_bucket_name,
            "DataBucket": data_bucket_name,
            "KmsKeyArn": key_arn,
            "CodeBucket": code.s3_bucket_name,
            "CodeKey": code_key,
            # The code channel holds the object under its key's last part (asset keys are literal strings).
            "CodeFile": code_key.rsplit("/", 1)[-1],
            "SecurityGroupId": security_group_id,
            **subnet_vars,
        }
        used_vars = {k: v for k, v in variables.items() if k in used or k in subnet_vars}
        self.pipeline_name = pipeline_name
        self.role = role
        self.resource = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=description or None,
            role_arn=role.role_arn,
            # PascalCase key: CfnPipeline's property is untyped, so CDK passes keys through unconverted.
            pipeline_definition={"PipelineDefinitionBody": Fn.sub(body, used_vars)},
        )
        self.pipeline_arn = Stack.of(self).format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower())

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:StartPipelineExecution"],
            resource_arns=[self.pipeline_arn],
        )

    def start_on_dataset_version(
        self,
        id: str,
        *,
        data_bucket_name: str,
        dataset: str,
        dead_letter_queue: sqs.IQueue,
        role: iam.IRole,
    ) -> events.CfnRule:
        """Start an execution when ``datasets/<dataset>/v<N>/manifest.json`` is created.

        The manifest is written after data.jsonl (the data-prep contract), so its arrival means the
        version is complete. The key becomes the DatasetManifestKey parameter.
        """
        return events.CfnRule(
            self,
            id,
            description=f"New version of dataset {dataset} starts {self.pipeline_name}",
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [data_bucket_name]},
                    "object": {"key": [{"wildcard": f"datasets/{dataset}/v*/manifest.json"}]},
                },
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="Pipeline",
                    arn=self.pipeline_arn,
                    role_arn=role.role_arn,
                    sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[
                            events.CfnRule.SageMakerPipelineParameterProperty(name="DatasetName", value=dataset),
                            events.CfnRule.SageMakerPipelineParameterProperty(
                                name="DatasetManifestKey", value="$.detail.object.key"
                            ),
                        ]
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=dead_letter_queue.queue_arn),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=int(Duration.hours(24).to_seconds()), maximum_retry_attempts=8
                    ),
                )
            ],
        )

    def metric_executions_failed(self, period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Sagemaker/ModelBuildingPipeline",
            metric_name="ExecutionFailed",
            dimensions_map={"PipelineName": self.pipeline_name},
            statistic="Sum",
            period=period,
        )


def definition_parameters(definition: str) -> Mapping[str, object]:
    """``{parameter name: default}`` of a compiled definition (for tests and docs)."""
    return {p["Name"]: p.get("DefaultValue") for p in json.loads(definition)["Parameters"]}

