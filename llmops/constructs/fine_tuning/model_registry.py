"""ModelRegistry: model package groups per use case, cross-account read, approval recording.

- One ``AWS::SageMaker::ModelPackageGroup`` per use case; when ``reader_accounts`` are given
  (staging/prod in other accounts), a resource policy lets them describe and list its packages.
  Consumers deploy only packages whose ModelApprovalStatus is Approved (the policy cannot filter
  on status), and the artifacts bucket and key grant those accounts read of model artifacts.
- Approval emits "SageMaker Model Package State Change"; a rule sends Approved events of these
  groups to ``fine_tuning_record_approval``, which writes the package ARN to the use case's SSM
  parameter ``/<name_prefix>/fine-tuning/<use_case>/approved-model-package-arn``. The function
  creates and overwrites that parameter; CloudFormation never owns it (a stack update would reset
  a template-owned value), so readers treat a missing parameter as "nothing approved yet".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.runtime.fine_tuning.approval import DETAIL_TYPE, approved_model_parameter_name
from llmops.constructs.core.platform_function import PlatformFunction


class ModelRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name_prefix: str,
        groups: Mapping[str, str],
        key: kms.IKey,
        dead_letter_queue: sqs.IQueue,
        network=None,
        reader_accounts: Sequence[str] = (),
        descriptions: Mapping[str, str] | None = None,
        bundle=None,
    ) -> None:
        """``groups`` maps use case -> model package group name."""
        super().__init__(scope, id)
        if not groups:
            raise ValueError("groups: a registry needs at least one use case -> model package group name")
        stack = Stack.of(self)
        self.name_prefix = name_prefix
        self.reader_accounts = tuple(a for a in reader_accounts if a != stack.account)
        self.groups: dict[str, sagemaker.CfnModelPackageGroup] = {}
        # Names only: the recorder function creates the parameters (see the module docstring).
        self.parameter_names: dict[str, str] = {}
        for use_case, group_name in sorted(groups.items()):
            group = sagemaker.CfnModelPackageGroup(
                self,
                f"Group-{use_case}",
                model_package_group_name=group_name,
                model_package_group_description=(descriptions or {}).get(use_case) or f"Fine-tuned models for {use_case}",
                model_package_group_policy=self._reader_policy(group_name) if self.reader_accounts else None,
            )
            self.groups[use_case] = group
            self.parameter_names[use_case] = approved_model_parameter_name(name_prefix, use_case)

        self.recorder = PlatformFunction(
            self,
            "RecordApproval",
            entry="fine_tuning_record_approval",
            runtime_packages=("fine_tuning",),
            key=key,
            network=network,
            description="Records approved fine-tuned model package ARNs in SSM Parameter Store",
            environment={
                "APPROVAL_PARAMETERS": json.dumps(
                    {groups[u]: approved_model_parameter_name(name_prefix, u) for u in sorted(groups)}, sort_keys=True
                ),
            },
            memory_size=256,
            timeout=Duration.seconds(30),
            dead_letter_queue=dead_letter_queue,
            bundle=bundle,
        )
        self.recorder.role.add_to_principal_policy(iam.PolicyStatement(
            sid="RecordApprovedPackages",
            actions=["ssm:GetParameter", "ssm:PutParameter"],
            # A parameter ARN is "parameter" + its name, which starts with "/".
            resources=[stack.format_arn(service="ssm", resource=f"parameter{name}") for name in self.parameter_names.values()],
        ))

        self.approval_rule = events.Rule(
            self,
            "ApprovedPackages",
            description="Approved fine-tuned model packages: record the ARN for the endpoint stack",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "ModelPackageGroupName": sorted(groups.values()),
                    "ModelApprovalStatus": ["Approved"],
                },
            ),
        )
        self.approval_rule.add_target(
            targets.LambdaFunction(
                self.recorder.function,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=8,
                max_event_age=Duration.hours(24),
            )
        )

    def _reader_policy(self, group_name: str) -> dict:
        stack = Stack.of(self)
        group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        packages_arn = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*")
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadersListPackages",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:{stack.partition}:iam::{a}:root" for a in self.reader_accounts]},
                    "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"],
                    "Resource": group_arn,
                },
                {
                    "Sid": "ReadersDescribePackages",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:{stack.partition}:iam::{a}:root" for a in self.reader_accounts]},
                    # Deploying a package from another account: describe it and create a model from it
                    # (the artifacts' S3 read and KMS decrypt are granted in the bucket and key policies;
                    # the inference images are AWS deep-learning containers, readable by every account).
                    "Action": ["sagemaker:DescribeModelPackage", "sagemaker:CreateModel"],
                    "Resource": packages_arn,
                },
            ],
        }

    def group_name(self, use_case: str) -> str:
        return self.groups[use_case].model_package_group_name

    def group_arn(self, use_case: str) -> str:
        return self.groups[use_case].attr_model_package_group_arn

    def approved_parameter_name(self, use_case: str) -> str:
        return approved_model_parameter_name(self.name_prefix, use_case)

    def grant_read_packages(self, grantee: iam.IGrantable, use_case: str) -> iam.Grant:
        stack = Stack.of(self)
        name = self.group_name(use_case)
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:DescribeModelPackageGroup"],
            resource_arns=[
                stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=name),
                stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{name}/*"),
            ],
        )

    def metric_recorder_errors(self) -> cloudwatch.Metric:
        return self.recorder.function.metric_errors(period=Duration.minutes(5))
