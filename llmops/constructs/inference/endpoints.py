"""LlmEndpoint and EmbeddingEndpoint: SageMaker real-time (or async / serverless) endpoints.

SageMaker resources are raw ``CfnResource`` with CloudFormation property names: one jsii call per
resource instead of one per nested struct (synth time), and exactly the properties the schema
documents. Names of create-only resources (models, endpoint configs) end in a hash of their
properties, so a change creates a new resource beside the old one and two synths are identical.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

from aws_cdk import CfnParameter, CfnResource, CfnRule, Duration, Fn, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from llmops.config import EmbeddingEndpointConfig, EnvironmentConfig, LlmEndpointConfig, ResolvedVariant
from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.sagemaker_role import sagemaker_unscoped_policy
from llmops.constructs.core.secure_bucket import SecureBucket
from llmops.constructs.inference.images import image_uri, repository_arns
from llmops.inference import MODEL_DIR, MODEL_VARIABLE, TP_VARIABLE, image, validate_settings
from llmops.nag import acknowledge_wildcard_resource

CAPTURE_PREFIX = "capture/"
ASYNC_PREFIX = "async-inference/"
BASE_MODELS_PREFIX = "base-models/"
MODELS_PREFIX = "models/"
JSON_CONTENT_TYPES = ["application/json", "application/jsonlines"]
PERIOD = Duration.minutes(1)
LATENCY_P90_SECONDS = 20  # ModelLatency p90 alarm: a generation slower than this is a symptom
GPU_MEMORY_PERCENT = 95
AlarmAction = Callable[..., None]


def short_hash(value: Any, scope: Construct) -> str:
    """8 hex digits of the resolved CloudFormation value (tokens resolve to the same intrinsics every synth)."""
    text = json.dumps(Stack.of(scope).resolve(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _tagged(scope: Construct, id: str, type_: str, props: dict[str, Any], cfg: EnvironmentConfig) -> CfnResource:
    """A raw SageMaker resource with the environment's tags (Tags.of reaches only typed L1 classes)."""
    tags = [{"Key": k, "Value": v} for k, v in sorted(cfg.tags.items())]
    return CfnResource(scope, id, type=type_, properties={**props, "Tags": tags})


def _name(base: str, digest: str) -> str:
    return f"{base[: 63 - 9]}-{digest}"


@dataclass(frozen=True)
class ServingContext:
    """What every endpoint of an environment shares: key, buckets, network, alarms."""

    env_config: EnvironmentConfig
    key: kms.IKey
    network: PlatformNetwork
    artifacts: SecureBucket
    data: SecureBucket
    alarm_action: AlarmAction | None = None


class _Endpoint(Construct):
    """Shared parts: the execution role, metrics, alarms, grants."""

    endpoint_name: str
    async_enabled: bool = False

    def _role(self, ctx: ServingContext, containers: set[str], model_prefixes: list[str], description: str) -> iam.Role:
        stack = Stack.of(self)
        role = iam.Role(self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"), description=description)
        role.add_to_policy(iam.PolicyStatement(
            sid="PullServingImages", actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=repository_arns(self, containers)))
        for prefix in model_prefixes:
            ctx.artifacts.grant_read(role, prefix)
        ctx.data.grant_write(role, CAPTURE_PREFIX)
        role.add_to_policy(iam.PolicyStatement(
            sid="EndpointLogs", actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/Endpoints/*"]))
        ctx.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey")
        sagemaker_unscoped_policy(
            self, "UnscopedPolicy", role=role, sid_prefix="Endpoint", workload="endpoints",
            subnet_ids=ctx.network.vpc.select_subnets(subnet_type=ctx.network.subnets.subnet_type).subnet_ids)
        policy = role.node.find_child("DefaultPolicy")
        logs_arn = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/Endpoints/*"
        acknowledge_wildcard_resource(policy, logs_arn, "SageMaker names each endpoint's log group "
                                      "/aws/sagemaker/Endpoints/<endpoint> at run time.")
        for arn in repository_arns(self, containers):
            acknowledge_wildcard_resource(policy, arn, "AWS deep learning containers live in AWS-owned registry "
                                          "accounts that differ by region.")
        return role

    # -- metrics, alarms, grants -----------------------------------------------------------------

    def _metric(self, name: str, statistic: str, namespace: str = "AWS/SageMaker", variant: str | None = None) -> cloudwatch.Metric:
        dims = {"EndpointName": self.endpoint_name}
        if variant:
            dims["VariantName"] = variant
        return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map=dims, statistic=statistic, period=PERIOD)

    def metric_latency(self, variant: str | None = None, statistic: str = "p90") -> cloudwatch.Metric:
        """ModelLatency (microseconds) of the endpoint's primary variant."""
        return self._metric("ModelLatency", statistic, variant=variant or self.primary_variant)

    def metric_invocations(self, variant: str | None = None) -> cloudwatch.Metric:
        return self._metric("Invocations", "Sum", variant=variant or self.primary_variant)

    def metric_errors(self, variant: str | None = None) -> cloudwatch.Metric:
        """Invocation5XXErrors: the model or container failed."""
        return self._metric("Invocation5XXErrors", "Sum", variant=variant or self.primary_variant)

    def _alarms(self, ctx: ServingContext, gpu: bool) -> list[cloudwatch.Alarm]:
        prefix = self.endpoint_name
        alarms = [
            cloudwatch.Alarm(self, "Errors5xx", alarm_name=f"{prefix}-5xx", metric=self.metric_errors(), threshold=1,
                             evaluation_periods=3, datapoints_to_alarm=2,
                             comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                             treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                             alarm_description=f"{prefix}: the model answered 5xx"),
            cloudwatch.Alarm(self, "LatencyP90", alarm_name=f"{prefix}-latency-p90", metric=self.metric_latency(),
                             threshold=LATENCY_P90_SECONDS * 1_000_000, evaluation_periods=5, datapoints_to_alarm=3,
                             comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                             treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                             alarm_description=f"{prefix}: ModelLatency p90 above {LATENCY_P90_SECONDS} s"),
        ]
        if gpu:
            alarms.append(cloudwatch.Alarm(
                self, "GpuMemory", alarm_name=f"{prefix}-gpu-memory",
                metric=self._metric("GPUMemoryUtilization", "Maximum", "/aws/sagemaker/Endpoints", self.primary_variant),
                threshold=GPU_MEMORY_PERCENT, evaluation_periods=5, datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{prefix}: GPU memory above {GPU_MEMORY_PERCENT}% (out-of-memory risk)"))
        if ctx.alarm_action:
            ctx.alarm_action(*alarms)
        return alarms

    @property
    def endpoint_arn(self) -> str:
        stack = Stack.of(self)
        # SageMaker lower-cases endpoint names in ARNs.
        return stack.format_arn(service="sagemaker", resource="endpoint", resource_name=self.endpoint_name.lower())

    def _schedule(self, ctx: ServingContext, schedule) -> "EndpointSchedule | None":
        """The stop/start schedule config asks for (config validation refused it on endpoints that idle at zero)."""
        if not schedule.enabled:
            return None
        from llmops.constructs.inference.schedule import EndpointSchedule

        made = EndpointSchedule(self, "Schedule", endpoint_name=self.endpoint_name, endpoint_config_name=self.endpoint_config_name,
                                schedule=schedule, key=ctx.key, tags=ctx.env_config.tags, alarm_action=ctx.alarm_action)
        for cfn in made.schedules.values():
            cfn.node.add_dependency(self.endpoint)  # the first stop never races the endpoint's creation
        return made

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        actions = ["sagemaker:InvokeEndpoint"] + (["sagemaker:InvokeEndpointAsync"] if self.async_enabled else [])
        return iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[self.endpoint_arn])

    def _capture(self, ctx: ServingContext, percent: int) -> dict[str, Any] | None:
        if percent == 0:
            return None
        return {
            "EnableCapture": True,
            "InitialSamplingPercentage": percent,
            "DestinationS3Uri": f"s3://{ctx.data.bucket_name}/{CAPTURE_PREFIX}",
            "KmsKeyId": ctx.key.key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": JSON_CONTENT_TYPES},
        }


class LlmEndpoint(_Endpoint):
    """The text-generation endpoint ``<name_prefix>-<inference.llm.name>`` and its scaling, alarms, capture."""

    def __init__(self, scope: Construct, id: str, *, ctx: ServingContext, approved_parameter_name: Callable[[str], str]) -> None:
        super().__init__(scope, id)
        cfg = ctx.env_config
        llm: LlmEndpointConfig = cfg.inference.llm
        self.config, self.env_config = llm, cfg
        self.endpoint_name = f"{cfg.name_prefix}-{llm.name}"
        variants = cfg.llm_variants()
        self.variants = variants
        self.primary_variant = variants[0].name
        self.container = variants[0].container
        self.async_enabled = llm.async_inference.enabled
        self.components = llm.scaling.mode == "scale-to-zero"
        stack = Stack.of(self)
        self.security_group = ctx.network.security_group_for(self, "SecurityGroup", f"SageMaker endpoint {self.endpoint_name}")
        subnets = ctx.network.vpc.select_subnets(subnet_type=ctx.network.subnets.subnet_type).subnet_ids
        self.vpc_config = {"SecurityGroupIds": [self.security_group.security_group_id], "Subnets": subnets}
        prefixes = sorted({self._model_prefix(v) for v in variants if v.model.source != "model-package"})
        self.role = self._role(ctx, {v.container for v in variants}, prefixes or [MODELS_PREFIX],
                               f"SageMaker endpoint {self.endpoint_name}")
        if any(v.model.source == "model-package" for v in variants):
            packages = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:model-package/{cfg.name_prefix}-*/*"
            self.role.add_to_policy(iam.PolicyStatement(
                sid="ReadApprovedPackages", actions=["sagemaker:DescribeModelPackage"],
                resources=[packages]))
            acknowledge_wildcard_resource(self.role.node.find_child("DefaultPolicy"), packages,
                                          "The approved package version is only known at deploy time (SSM); "
                                          "the groups share the environment prefix.")
        self.models = {v.name: self._model(v, ctx, approved_parameter_name) for v in variants}
        self.endpoint_config = self._endpoint_config(ctx, variants)
        self.alarms = self._alarms(ctx, gpu=True)
        props: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "EndpointConfigName": self.endpoint_config.get_att("EndpointConfigName"),
            "RetainAllVariantProperties": True,  # a redeploy keeps the autoscaled instance count
        }
        if not self.components:
            props["DeploymentConfig"] = {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
                    "TerminationWaitInSeconds": 600,
                    "MaximumExecutionTimeoutInSeconds": 3600,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a.alarm_name} for a in self.alarms[:2]]},
            }
        self.endpoint = _tagged(self, "Endpoint", "AWS::SageMaker::Endpoint", props, cfg)
        for alarm in self.alarms:  # the rollback alarms exist before the first update needs them
            self.endpoint.node.add_dependency(alarm)
        self.component = self._inference_component(variants[0]) if self.components else None
        self._scaling(llm)
        self.schedule = self._schedule(ctx, llm.schedule)

    # -- pieces ---------------------------------------------------------------------------------

    @staticmethod
    def _model_prefix(v: ResolvedVariant) -> str:
        if v.model.source == "s3":
            return f"{MODELS_PREFIX}{v.model.s3_prefix}"
        return f"{BASE_MODELS_PREFIX}{v.model.base_model}/{v.model.revision}/"

    def _model(self, v: ResolvedVariant, ctx: ServingContext, approved: Callable[[str], str]) -> CfnResource:
        env = validate_settings(v.container, v.settings)
        env[TP_VARIABLE[v.container]] = str(v.tensor_parallel_degree)
        env[MODEL_VARIABLE[v.container]] = MODEL_DIR
        container: dict[str, Any] = {"Environment": env}
        if v.model.source == "model-package":
            container["ModelPackageName"] = self._approved_package(v.model.use_case, approved(v.model.use_case))
        else:
            container["Image"] = image_uri(self, v.container)
            container["ModelDataSource"] = {"S3DataSource": {
                "S3Uri": f"s3://{ctx.artifacts.bucket_name}/{self._model_prefix(v)}",
                "S3DataType": "S3Prefix", "CompressionType": "None"}}
        props = {"ExecutionRoleArn": self.role.role_arn, "PrimaryContainer": container, "VpcConfig": self.vpc_config,
                 "EnableNetworkIsolation": True}
        props["ModelName"] = _name(f"{self.endpoint_name}-{v.name}", short_hash(props, self))
        model = _tagged(self, f"Model-{v.name}", "AWS::SageMaker::Model", props, ctx.env_config)
        model.node.add_dependency(self.role)
        return model

    def _approved_package(self, use_case: str, parameter_name: str) -> str:
        """The approved package ARN from SSM at deploy; a rule refuses the deploy while it reads 'none'."""
        stack = Stack.of(self)
        pid = f"ApprovedPackage{use_case.replace('-', '').title()}"
        param = stack.node.try_find_child(pid) or CfnParameter(
            stack, pid, type="AWS::SSM::Parameter::Value<String>", default=parameter_name,
            description=f"SSM parameter holding the approved model package ARN of use case {use_case}")
        CfnRule(stack, f"{pid}Recorded", assertions=[{
            "assert": Fn.condition_not(Fn.condition_equals(param.value_as_string, "none")),
            "assertDescription": (
                f"SSM parameter {parameter_name} is 'none': no model package of use case {use_case} is approved yet. "
                f"Approve one (aws sagemaker update-model-package --model-package-arn <arn> "
                f"--model-approval-status Approved), wait for the recorder to write the parameter, then deploy again."),
        }]) if stack.node.try_find_child(f"{pid}Recorded") is None else None
        return param.value_as_string

    def _endpoint_config(self, ctx: ServingContext, variants: list[ResolvedVariant]) -> CfnResource:
        cfg, llm = ctx.env_config, self.config
        nvme = any(cfg.instance(v.instance_type).nvme for v in variants)

        def variant(v: ResolvedVariant) -> dict[str, Any]:
            row: dict[str, Any] = {
                "VariantName": v.name, "InstanceType": v.instance_type, "InitialInstanceCount": v.instance_count,
                "ContainerStartupHealthCheckTimeoutInSeconds": llm.health_check_timeout_seconds,
                "ModelDataDownloadTimeoutInSeconds": llm.health_check_timeout_seconds,
            }
            ami = image(v.container)["inference_ami_version"]
            if ami:
                row["InferenceAmiVersion"] = ami
            if self.components:
                row["ManagedInstanceScaling"] = {"Status": "ENABLED", "MinInstanceCount": llm.scaling.min_capacity,
                                                 "MaxInstanceCount": llm.scaling.max_capacity}
                row["RoutingConfig"] = {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
            else:
                row["ModelName"] = self.models[v.name].get_att("ModelName")
                row["InitialVariantWeight"] = v.weight
            return row

        props: dict[str, Any] = {"ProductionVariants": [variant(v) for v in variants if not v.shadow]}
        shadows = [variant(v) for v in variants if v.shadow]
        if shadows:
            props["ShadowProductionVariants"] = shadows
        if not nvme:  # types with NVMe instance storage reject a volume key (their storage is hardware-encrypted)
            props["KmsKeyId"] = ctx.key.key_arn
        capture = self._capture(ctx, cfg.inference.data_capture_percent)
        if capture:
            props["DataCaptureConfig"] = capture
        if self.components:
            props["ExecutionRoleArn"] = self.role.role_arn
            props["VpcConfig"] = self.vpc_config
            props["EnableNetworkIsolation"] = True
        if self.async_enabled:
            props["AsyncInferenceConfig"] = {
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": llm.async_inference.max_concurrent_invocations_per_instance},
                "OutputConfig": {"S3OutputPath": f"s3://{ctx.data.bucket_name}/{ASYNC_PREFIX}output/",
                                 "S3FailurePath": f"s3://{ctx.data.bucket_name}/{ASYNC_PREFIX}failure/",
                                 "KmsKeyId": ctx.key.key_arn},
            }
            ctx.data.grant_read_write(self.role, ASYNC_PREFIX)
        props["EndpointConfigName"] = _name(self.endpoint_name, short_hash(props, self))
        self.endpoint_config_name = props["EndpointConfigName"]
        config = _tagged(self, "EndpointConfig", "AWS::SageMaker::EndpointConfig", props, cfg)
        for model in self.models.values():
            config.node.add_dependency(model)
        return config

    def _inference_component(self, v: ResolvedVariant) -> CfnResource:
        facts = self.env_config.instance(v.instance_type)
        # Half the host memory: the container needs room beside the weights, and a copy must fit one instance.
        memory_mb = int(facts.memory_gib * 1024 * 0.5)
        component = _tagged(self, "InferenceComponent", "AWS::SageMaker::InferenceComponent", {
            "InferenceComponentName": f"{self.endpoint_name}-{v.name}",
            "EndpointName": self.endpoint.get_att("EndpointName"),
            "VariantName": v.name,
            "Specification": {
                "ModelName": self.models[v.name].get_att("ModelName"),
                "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": v.tensor_parallel_degree,
                                                "MinMemoryRequiredInMb": memory_mb},
                "StartupParameters": {"ContainerStartupHealthCheckTimeoutInSeconds": self.config.health_check_timeout_seconds,
                                      "ModelDataDownloadTimeoutInSeconds": self.config.health_check_timeout_seconds},
            },
            "RuntimeConfig": {"CopyCount": 1},
        }, self.env_config)
        self.component_name = f"{self.endpoint_name}-{v.name}"
        return component

    def _scaling(self, llm: LlmEndpointConfig) -> None:
        s = llm.scaling
        self.scalable_target = None
        if s.mode == "none" and not self.async_enabled:
            return
        if self.components:
            resource_id, dimension = f"inference-component/{self.component_name}", "sagemaker:inference-component:DesiredCopyCount"
        else:
            resource_id, dimension = f"endpoint/{self.endpoint_name}/variant/{self.primary_variant}", "sagemaker:variant:DesiredInstanceCount"
        minimum = 0 if self.async_enabled else s.min_capacity
        target = appscaling.ScalableTarget(
            self, "ScalableTarget", service_namespace=appscaling.ServiceNamespace.SAGEMAKER, resource_id=resource_id,
            scalable_dimension=dimension, min_capacity=minimum, max_capacity=s.max_capacity)
        target.node.add_dependency(self.component or self.endpoint)
        self.scalable_target = target
        cooldown = Duration.seconds(s.scale_in_cooldown_seconds)
        if self.async_enabled:
            backlog = cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ApproximateBacklogSizePerInstance",
                                        dimensions_map={"EndpointName": self.endpoint_name}, statistic="Average", period=PERIOD)
            target.scale_to_track_metric("Backlog", target_value=llm.async_inference.target_backlog_per_instance,
                                         custom_metric=backlog, scale_in_cooldown=cooldown, scale_out_cooldown=Duration.minutes(1))
            self._scale_out_of_zero(target, "HasBacklogWithoutCapacity", {"EndpointName": self.endpoint_name})
            return
        metric = (appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY if self.components
                  else appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE)
        target.scale_to_track_metric("Invocations", target_value=s.target_invocations, predefined_metric=metric,
                                     resource_label=None, scale_in_cooldown=cooldown, scale_out_cooldown=Duration.minutes(1))
        if self.components:
            self._scale_out_of_zero(target, "NoCapacityInvocationFailures", {"InferenceComponentName": self.component_name})

    def _scale_out_of_zero(self, target: appscaling.ScalableTarget, metric_name: str, dims: dict[str, str]) -> None:
        """Target tracking cannot leave zero: a step policy adds one on the no-capacity signal."""
        action = appscaling.StepScalingAction(self, "ScaleOutOfZero", scaling_target=target,
                                              adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                                              cooldown=Duration.minutes(5))
        action.add_adjustment(adjustment=1, lower_bound=0)
        self.no_capacity_alarm = cloudwatch.Alarm(
            self, "NoCapacity", alarm_name=f"{self.endpoint_name}-no-capacity",
            metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=metric_name, dimensions_map=dims,
                                     statistic="Maximum", period=PERIOD),
            threshold=1, evaluation_periods=1, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{self.endpoint_name}: a request found no capacity; scale out of zero")
        self.no_capacity_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(action))


class EmbeddingEndpoint(_Endpoint):
    """The embeddings endpoint ``<name_prefix>-<inference.embeddings.name>`` (TEI), serverless or on instances."""

    def __init__(self, scope: Construct, id: str, *, ctx: ServingContext) -> None:
        super().__init__(scope, id)
        cfg = ctx.env_config
        emb: EmbeddingEndpointConfig = cfg.inference.embeddings
        self.config = emb
        self.endpoint_name = f"{cfg.name_prefix}-{emb.name}"
        self.primary_variant = "primary"
        self.dimension = emb.resolved_dimension()
        prefix = f"{BASE_MODELS_PREFIX}{emb.model_id}/{emb.revision}/"
        self.role = self._role(ctx, {emb.container}, [prefix], f"SageMaker endpoint {self.endpoint_name}")
        env = validate_settings(emb.container, emb.settings)
        env["HF_MODEL_ID"] = MODEL_DIR
        props: dict[str, Any] = {
            "ExecutionRoleArn": self.role.role_arn,
            "PrimaryContainer": {"Image": image_uri(self, emb.container), "Environment": env, "ModelDataSource": {"S3DataSource": {
                "S3Uri": f"s3://{ctx.artifacts.bucket_name}/{prefix}", "S3DataType": "S3Prefix", "CompressionType": "None"}}},
        }
        if not emb.serverless:  # serverless inference supports neither VPC configuration nor network isolation
            self.security_group = ctx.network.security_group_for(self, "SecurityGroup", f"SageMaker endpoint {self.endpoint_name}")
            subnets = ctx.network.vpc.select_subnets(subnet_type=ctx.network.subnets.subnet_type).subnet_ids
            props["VpcConfig"] = {"SecurityGroupIds": [self.security_group.security_group_id], "Subnets": subnets}
            props["EnableNetworkIsolation"] = True
        props["ModelName"] = _name(f"{self.endpoint_name}-model", short_hash(props, self))
        self.model = _tagged(self, "Model", "AWS::SageMaker::Model", props, cfg)
        self.model.node.add_dependency(self.role)
        variant: dict[str, Any] = {"VariantName": self.primary_variant, "ModelName": self.model.get_att("ModelName")}
        config: dict[str, Any] = {"KmsKeyId": ctx.key.key_arn}
        if emb.serverless:
            variant["ServerlessConfig"] = {"MemorySizeInMB": emb.serverless_memory_mb, "MaxConcurrency": emb.serverless_max_concurrency}
        else:
            variant.update(InstanceType=emb.instance_type, InitialInstanceCount=emb.instance_count, InitialVariantWeight=1)
            ami = image(emb.container)["inference_ami_version"]
            if ami:
                variant["InferenceAmiVersion"] = ami
            if cfg.instance(emb.instance_type).nvme:
                config.pop("KmsKeyId")
            capture = self._capture(ctx, cfg.inference.data_capture_percent)
            if capture:  # serverless endpoints do not support data capture
                config["DataCaptureConfig"] = capture
        config["ProductionVariants"] = [variant]
        config["EndpointConfigName"] = _name(self.endpoint_name, short_hash(config, self))
        self.endpoint_config_name = config["EndpointConfigName"]
        self.endpoint_config = _tagged(self, "EndpointConfig", "AWS::SageMaker::EndpointConfig", config, cfg)
        self.endpoint_config.node.add_dependency(self.model)
        self.alarms = self._alarms(ctx, gpu=emb.container == "tei" and not emb.serverless)
        endpoint: dict[str, Any] = {"EndpointName": self.endpoint_name,
                                    "EndpointConfigName": self.endpoint_config.get_att("EndpointConfigName"),
                                    "RetainAllVariantProperties": True}
        if not emb.serverless:  # blue/green guardrails apply to instance-backed endpoints
            endpoint["DeploymentConfig"] = {
                "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120},
                                          "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 1800},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a.alarm_name} for a in self.alarms[:2]]},
            }
        self.endpoint = _tagged(self, "Endpoint", "AWS::SageMaker::Endpoint", endpoint, cfg)
        for alarm in self.alarms:
            self.endpoint.node.add_dependency(alarm)
        self.schedule = self._schedule(ctx, emb.schedule)
