"""HumanReview: an A2I human task UI + flow definition (custom resource), its role and output prefix."""

from __future__ import annotations

from aws_cdk import CustomResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.runtime.human_review.template import template_source
from llmops.constructs.core.custom_resource import custom_resource_provider
from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.core.secure_bucket import SecureBucket


class HumanReview(Construct):
    """Review tasks for LLM answers, worked by a private workteam; results under ``output_prefix``.

    CloudFormation has no type for flow definitions or task UIs and neither can be updated, so a
    custom resource creates both under names derived from a hash of their content; a change creates
    a new pair and CloudFormation deletes the old one after the switch.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name_prefix: str,
        workteam_arn: str,
        key: kms.IKey,
        data: SecureBucket,
        output_prefix: str = "reviews/",
        workers_per_task: int = 1,
        task_time_limit_seconds: int = 3600,
        task_availability_seconds: int = 86400,
        task_title: str = "Review an LLM answer",
        task_description: str = "Rate the answer against its passages, tick its problems, correct it",
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        template: str | None = None,
        network: PlatformNetwork | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not 1 <= workers_per_task <= 3:
            raise ValueError(f"workers_per_task: A2I takes 1-3 workers per task, got {workers_per_task}")
        if not output_prefix.endswith("/"):
            raise ValueError(f"output_prefix: must end with '/', got {output_prefix!r}")
        stack = Stack.of(self)
        self.output_prefix = output_prefix
        self.role = iam.Role(self, "A2iRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description="A2I flow definition: writes review output")
        data.grant_write(self.role, output_prefix)  # the review output, encrypted with the platform key
        function = PlatformFunction(
            self, "FlowFunction", entry="human_review_flow", runtime_packages=["human_review"], key=key,
            invoked_by="the custom-resource provider framework (synchronous invoke)",
            description="Human review: A2I task UI and flow definition (custom resource)", log_retention=log_retention,
            network=network,
        )
        arn = lambda kind: f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:{kind}/{name_prefix}-review-*"  # noqa: E731
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateHumanTaskUi", "sagemaker:DeleteHumanTaskUi", "sagemaker:DescribeHumanTaskUi"],
            resources=[arn("human-task-ui")],
        ))
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateFlowDefinition", "sagemaker:DeleteFlowDefinition", "sagemaker:DescribeFlowDefinition"],
            resources=[arn("flow-definition")],
        ))
        function.role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        from llmops.nag import acknowledge_wildcard_resource

        for kind in ("human-task-ui", "flow-definition"):
            acknowledge_wildcard_resource(
                function.role.node.find_child("DefaultPolicy"), arn(kind),
                f"A2I {kind} names carry a content hash (they cannot be updated, only replaced); the prefix scopes them.",
            )
        provider = custom_resource_provider(self, "Provider", on_event=function, key=key, log_retention=log_retention)
        self.resource = CustomResource(
            self, "Flow", service_token=provider.service_token, resource_type="Custom::HumanReviewFlow",
            properties={
                "Prefix": f"{name_prefix}-review",
                "Template": template or template_source(),
                "WorkteamArn": workteam_arn,
                "TaskTitle": task_title,
                "TaskDescription": task_description,
                "TaskCount": str(workers_per_task),
                "TaskAvailabilitySeconds": str(task_availability_seconds),
                "TaskTimeLimitSeconds": str(task_time_limit_seconds),
                "OutputPath": f"s3://{data.bucket.bucket_name}/{output_prefix}",
                "KmsKeyArn": key.key_arn,
                "RoleArn": self.role.role_arn,
            },
        )
        self.resource.node.add_dependency(self.role)
        self.flow_definition_arn = self.resource.get_att_string("FlowDefinitionArn")
        self.name_prefix = name_prefix

    def grant_start_loop(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start human loops of this flow definition (the action's resource is the flow)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:StartHumanLoop"], resource_arns=[self.flow_definition_arn],
        )
