"""The custom-resource provider every platform custom resource uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import RemovalPolicy, Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from llmops.constructs.core.dead_letter_queue import DeadLetterQueue
from llmops.constructs.core.platform_function import reserved_concurrency_for
from llmops.constructs.core.scanner import scanner_exception
from llmops.nag import acknowledge

if TYPE_CHECKING:
    from llmops.constructs.core.platform_function import PlatformFunction


def custom_resource_provider(scope: Construct, id: str, *, on_event: "PlatformFunction", key: kms.IKey,
                    log_retention: logs.RetentionDays) -> cr.Provider:
    """A CDK Provider around a custom-resource handler, with its framework function checked by cdk-nag.

    The framework function runs where its handler runs (the VPC when the handler has a network),
    keeps failed asynchronous invocations from CloudFormation in a dead-letter queue, and takes the
    environment's default reserved concurrency.
    """
    log_group = logs.LogGroup(scope, f"{id}Logs", encryption_key=key, retention=log_retention,
                              removal_policy=RemovalPolicy.DESTROY)
    network = on_event.network
    vpc_args: dict[str, object] = {}
    if network is not None:
        # The framework runs in the handler's isolated subnets with its security group: it reaches AWS
        # only through the VPC endpoints.
        vpc_args = {"vpc": network.vpc, "vpc_subnets": network.subnets, "security_groups": [on_event.security_group]}
        # From the isolated subnets the framework reaches its handler only through the Lambda endpoint
        # (CloudFormation's S3 response URL goes through the S3 gateway endpoint).
        network.add_interface_endpoint("lambda")
    provider = cr.Provider(
        scope,
        id,
        on_event_handler=on_event.function,
        log_group=log_group,
        provider_function_env_encryption=key,
        **vpc_args,
    )
    framework = provider.node.find_child("framework-onEvent")
    framework_cfn = framework.node.default_child
    framework_cfn.reserved_concurrent_executions = reserved_concurrency_for(scope, "default")
    # CloudFormation invokes the framework asynchronously: a failed invocation is kept, with its event.
    foundation = getattr(Stage.of(scope), "foundation", None)  # an LlmOpsStage: its alarm topic
    dead_letters = DeadLetterQueue(scope, f"{id}DeadLetterQueue", key=key,
                                   purpose=f"the {id} custom-resource provider framework's asynchronous invocations",
                                   alarm_actions=getattr(foundation, "alarm_actions", ()))
    # Exactly what sending to a CMK-encrypted queue needs (grant_send_messages adds kms:ReEncrypt*/GenerateDataKey*).
    framework.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[dead_letters.queue_arn]))
    framework.add_to_role_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]))
    if network is not None:
        acknowledge(
            framework,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
            "The CDK provider framework function runs in the platform's isolated subnets; AWS's managed policy "
            "holds only the ENI calls Lambda makes for VPC access.",
        )
    if network is None:
        scanner_exception(framework, "vpc",
                          "Runs where its handler runs: outside the VPC, as network.functions_in_vpc keeps functions "
                          "that reach no VPC resource; it only relays CloudFormation events to the handler.")
    framework_cfn.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=dead_letters.queue_arn)
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
