"""EndpointSchedule: stop and start an instance-based SageMaker endpoint with EventBridge Scheduler.

SageMaker has no "stop" for a real-time endpoint, and an instance-based variant cannot go below one
instance. So ``stop`` deletes the endpoint (billing stops; the model and the endpoint config stay in
the stack) and ``start`` creates it again, with the same name, from the endpoint config the stack
holds now, and with the environment's cost tags. Both are Scheduler universal targets calling the
SageMaker API directly (no function): the calls take only names the template knows.
The trade-off with CloudFormation is in docs/inference.md: deploy while the endpoint is up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from llmops.config import EndpointScheduleConfig
from llmops.constructs.core.dead_letter_queue import DeadLetterQueue


class EndpointSchedule(Construct):
    def __init__(self, scope: Construct, id: str, *, endpoint_name: str, endpoint_config_name: str,
                 schedule: EndpointScheduleConfig, key: kms.IKey, tags: Mapping[str, str], alarm_action=None) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        names = {"stop": f"{endpoint_name}-stop"[:64], "start": f"{endpoint_name}-start"[:64]}
        endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())
        config_arn = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name=endpoint_config_name.lower())
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnEquals": {"aws:SourceArn": [stack.format_arn(service="scheduler", resource="schedule",
                                                                 resource_name=f"default/{n}") for n in names.values()]},
            }),
            description=f"EventBridge Scheduler: stop/start of SageMaker endpoint {endpoint_name} only",
        )
        self.role.add_to_policy(iam.PolicyStatement(sid="StopEndpoint", actions=["sagemaker:DeleteEndpoint"], resources=[endpoint_arn]))
        # CreateEndpoint is authorised on the endpoint and on the config it uses; tags on create need AddTags.
        self.role.add_to_policy(iam.PolicyStatement(sid="StartEndpoint", actions=["sagemaker:CreateEndpoint"],
                                                    resources=[endpoint_arn, config_arn]))
        self.role.add_to_policy(iam.PolicyStatement(sid="TagOnStart", actions=["sagemaker:AddTags"], resources=[endpoint_arn]))
        # The config's volume key (KmsKeyId): SageMaker takes a grant on it for the instances it starts.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="VolumeKeyGrant", actions=["kms:CreateGrant"], resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
        # A stop or start that still fails after its retries is kept, and its alarm says so.
        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetters", key=key,
                                                 purpose=f"the stop/start schedules of SageMaker endpoint {endpoint_name}")
        if alarm_action:
            alarm_action(self.dead_letter_queue.alarm)
        self.role.add_to_policy(iam.PolicyStatement(sid="DeadLetters", actions=["sqs:SendMessage"],
                                                    resources=[self.dead_letter_queue.queue_arn]))
        self.role.add_to_policy(iam.PolicyStatement(sid="DeadLettersKey", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                                    resources=[key.key_arn]))
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        inputs = {
            "stop": ("deleteEndpoint", schedule.stop, {"EndpointName": endpoint_name}),
            "start": ("createEndpoint", schedule.start,
                      {"EndpointName": endpoint_name, "EndpointConfigName": endpoint_config_name, "Tags": tag_list}),
        }
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        for what, (api, expression, payload) in inputs.items():
            self.schedules[what] = scheduler.CfnSchedule(
                self, what.capitalize(),
                name=names[what],
                description=f"{what} SageMaker endpoint {endpoint_name} ({expression} {schedule.timezone})",
                schedule_expression=expression,
                schedule_expression_timezone=schedule.timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=f"arn:{stack.partition}:scheduler:::aws-sdk:sagemaker:{api}",
                    role_arn=self.role.role_arn,
                    input=json.dumps(payload, sort_keys=True),
                    # A stop on a deleted endpoint or a start on a running one fails harmlessly: few retries.
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3,
                                                                           maximum_event_age_in_seconds=3600),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
                ),
            )
            self.schedules[what].node.add_dependency(self.role)
