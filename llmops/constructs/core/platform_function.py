"""PlatformFunction: a Python Lambda function with the platform's defaults.

Python 3.13 on arm64 (cheaper per GB-second than x86_64 for the same work), Powertools
configured through environment variables, X-Ray active tracing, environment and logs
encrypted with the platform key, running in the isolated subnets when a network is given.
Code is bundled locally (no Docker): see ``LambdaBundle``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, Duration, ILocalBundling, RemovalPolicy, Stack, Stage
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.constructs.core.lambda_bundle import LambdaBundle
from llmops.constructs.core.scanner import scanner_exception
from llmops.nag import acknowledge

if TYPE_CHECKING:
    from llmops.constructs.core.network import PlatformNetwork

RUNTIME = lambda_.Runtime.PYTHON_3_13
# Used where no environment config is in scope (constructs built outside an LlmOpsStage).
DEFAULT_RESERVED_CONCURRENCY = 10


def reserved_concurrency_for(scope: Construct, function: str, env_config: object = None) -> int:
    """``functions.reserved_concurrency`` of the environment being built, for ``function`` (a lambdas/ folder)."""
    if env_config is None:
        env_config = getattr(Stage.of(scope), "env_config", None)
    functions = getattr(env_config, "functions", None)
    return functions.reserved_for(function) if functions is not None else DEFAULT_RESERVED_CONCURRENCY


class _Shared:
    """Values every function uses alike, fetched over jsii once per process instead of once per function."""

    _values: dict[str, object] = {}

    @classmethod
    def get(cls, name: str, make):
        if name not in cls._values:
            cls._values[name] = make()
        return cls._values[name]


def _build_image() -> DockerImage:
    # Never run (bundling is local), but BundlingOptions requires an image.
    return _Shared.get("image", lambda: DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"))


@jsii.implements(ILocalBundling)
class _LocalBundling:
    """Runs ``LambdaBundle.build`` in-process when CDK asks for the asset."""

    def __init__(self, bundle: LambdaBundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, options: object = None) -> bool:  # jsii passes options positionally
        self._bundle.build(output_dir)
        return True


class PlatformFunction(Construct):
    """A Lambda function whose handler is ``lambdas.<entry>.handler.handler``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        entry: str,
        key: kms.IKey,
        description: str,
        network: "PlatformNetwork | None" = None,
        runtime_packages: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        memory_size: int = 512,
        timeout: Duration = Duration.seconds(30),
        reserved_concurrency: int | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        extra_files: Sequence[str] = (),
        dead_letter_queue: sqs.IQueue | None = None,
        invoked_by: str | None = None,
        bundle: LambdaBundle | None = None,
        needs_vpc: bool = False,
    ) -> None:
        super().__init__(scope, id)
        # needs_vpc: the function reaches a VPC resource (a database); otherwise the network's
        # functions_in_vpc setting decides whether it runs in the isolated subnets.
        network = network.for_function(needs_vpc) if network is not None else None
        self.network = network  # custom-resource providers of this handler run in the same subnets
        if not 128 <= memory_size <= 10240:
            raise ValueError(f"memory_size: must be 128-10240 MB, got {memory_size}")
        if key is None:
            raise ValueError("key: PlatformFunction needs the platform key for env and log encryption")
        self.bundle = bundle or LambdaBundle(
            entry=entry, runtime_packages=tuple(runtime_packages), extra_files=tuple(extra_files)
        )
        stack = Stack.of(self)
        if dead_letter_queue is None and not invoked_by:
            raise ValueError(
                f"{id}: pass dead_letter_queue (asynchronous invocations keep their failures) or invoked_by "
                "(the synchronous caller, recorded as the reason it needs none)"
            )
        # The environment's config when built inside an LlmOpsStage (reserved concurrency); the stage
        # also keeps its functions, to add COST_TAGS without walking the construct tree.
        stage = Stage.of(self)
        env_config = getattr(stage, "env_config", None)
        getattr(stage, "platform_functions", []).append(self)
        if reserved_concurrency is None:
            reserved_concurrency = reserved_concurrency_for(self, entry, env_config)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY if log_retention != logs.RetentionDays.INFINITE else RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=_Shared.get("principal", lambda: iam.ServicePrincipal("lambda.amazonaws.com")),
            description=f"Execution role of {id} ({entry})",
        )
        self.log_group.grant_write(self.role)

        # X-Ray and ENI management APIs have no resource-level permissions, so they sit in a
        # policy of their own: the acknowledgement below covers them and nothing else.
        runtime_statements = [
            iam.PolicyStatement(
                sid="XRayWrite",
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],
            )
        ]
        if network is not None:
            runtime_statements.append(
                iam.PolicyStatement(
                    sid="VpcNetworkInterfaces",
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            )
        self.runtime_policy = iam.Policy(self, "RuntimePolicy", statements=runtime_statements, roles=[self.role])
        acknowledge(
            self.runtime_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords and the EC2 network-interface calls Lambda "
            "makes for VPC access do not support resource-level permissions.",
        )

        env = {
            "POWERTOOLS_SERVICE_NAME": entry,
            "POWERTOOLS_METRICS_NAMESPACE": "LLMOps",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PLATFORM_ENVIRONMENT": stack.stack_name,
            **(environment or {}),
        }
        self.security_group: ec2.ISecurityGroup | None = None
        vpc_args: dict[str, object] = {}
        if network is not None:
            self.security_group = network.security_group_for(self, "SecurityGroup", f"{id} Lambda")
            vpc_args = {"vpc": network.vpc, "vpc_subnets": network.subnets, "security_groups": [self.security_group]}

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=_Shared.get("arm64", lambda: lambda_.Architecture.ARM_64),
            handler=f"lambdas.{self.bundle.entry}.handler.handler",
            code=lambda_.Code.from_asset(
                str(self.bundle.function_dir),
                asset_hash=self.bundle.asset_hash(),
                asset_hash_type=AssetHashType.CUSTOM,
                bundling=BundlingOptions(
                    image=_build_image(),
                    local=_LocalBundling(self.bundle),
                ),
            ),
            description=description,
            role=self.role,
            memory_size=memory_size,
            timeout=timeout,
            environment=env,
            environment_encryption=key,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=dead_letter_queue,
            **vpc_args,
        )
        # Active tracing set on the L1 so CDK does not add its X-Ray statement with Resource "*"
        # to the role's default policy, where it would hide among scoped grants.
        cfn = self.function.node.default_child
        cfn.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        self.function.node.add_dependency(self.runtime_policy)
        if network is None:
            scanner_exception(cfn, "vpc",
                              "Reaches no VPC resource and the environment keeps such functions outside the VPC "
                              "(network.functions_in_vpc); it calls AWS APIs over TLS with its IAM role only.")
        if dead_letter_queue is None:
            scanner_exception(cfn, "dead-letter",
                              f"Invoked synchronously only, by {invoked_by}: the caller receives and handles every "
                              "error, so there is no asynchronous failure to keep.")
        scanner_exception(self.runtime_policy, "unconstrained-write",
                          "X-Ray PutTraceSegments/PutTelemetryRecords and the Lambda VPC network-interface calls take "
                          "no resource ARN or condition key that narrows them (AWSLambdaVPCAccessExecutionRole grants "
                          "the same on \"*\").")
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "The platform pins Python 3.13 for every function so bundled cp313 wheels match; "
            "moving to 3.14 is one reviewed change in platform_function.RUNTIME.",
        )

    @property
    def function_arn(self) -> str:
        return self.function.function_arn

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self.role

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.function.grant_invoke(grantee)

    def add_environment(self, key: str, value: str) -> None:
        self.function.add_environment(key, value)

    def metric_errors(self, **kwargs):
        return self.function.metric_errors(**kwargs)

    def metric_duration(self, **kwargs):
        return self.function.metric_duration(**kwargs)

    def metric_throttles(self, **kwargs):
        return self.function.metric_throttles(**kwargs)
