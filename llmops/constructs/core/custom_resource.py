"""The custom-resource provider every platform custom resource uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from llmops.nag import acknowledge

if TYPE_CHECKING:
    from llmops.constructs.core.platform_function import PlatformFunction


def custom_resource_provider(scope: Construct, id: str, *, on_event: "PlatformFunction", key: kms.IKey,
                    log_retention: logs.RetentionDays) -> cr.Provider:
    """A CDK Provider around a custom-resource handler, with its framework function checked by cdk-nag."""
    log_group = logs.LogGroup(scope, f"{id}Logs", encryption_key=key, retention=log_retention,
                              removal_policy=RemovalPolicy.DESTROY)
    provider = cr.Provider(
        scope,
        id,
        on_event_handler=on_event.function,
        log_group=log_group,
        provider_function_env_encryption=key,
    )
    framework = provider.node.find_child("framework-onEvent")
    acknowledge(
        framework,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "The CDK provider framework function only relays CloudFormation events; the managed policy "
        "grants it nothing beyond writing its own logs.",
    )
    acknowledge(
        framework,
        "AwsSolutions-IAM5[Resource::<" + _logical_ref(on_event) + ".Arn>:*]",
        "The provider framework invokes every version/alias of its one onEvent handler; the wildcard "
        "is the version qualifier of that single function.",
    )
    acknowledge(
        framework,
        "AwsSolutions-L1",
        "The provider framework function's Node.js runtime is chosen and updated by aws-cdk-lib.",
    )
    return provider


def _logical_ref(function: "PlatformFunction") -> str:
    return Stack.of(function).get_logical_id(function.function.node.default_child)
