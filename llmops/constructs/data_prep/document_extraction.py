"""DocumentExtraction: Textract asynchronous jobs that report completion through SNS.

The start function runs as a ``.waitForTaskToken`` task: it starts the job and parks the task
token in a table keyed by JobId. Textract publishes to the CMK-encrypted topic with its own
role; the result function reads every result page (NextToken) and answers the workflow with
SendTaskSuccess or SendTaskFailure. No function polls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.core.secure_bucket import SecureBucket
from llmops.constructs.core.scanner import scanner_exception
from llmops.nag import acknowledge

TEXTRACT_FEATURES = ("LAYOUT", "TABLES", "FORMS")


class DocumentExtraction(Construct):
    """Textract start/result functions, completion topic, publishing role and task-token table."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        data: SecureBucket,
        artifacts: SecureBucket,
        network: PlatformNetwork | None,
        dead_letter_queue: sqs.IQueue,
        features: Sequence[str] = ("LAYOUT", "TABLES"),
        source_prefix: str = "raw/",
        work_prefix: str = "dataprep/work/",
        environment: Mapping[str, str] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id)
        unknown = sorted(set(features) - set(TEXTRACT_FEATURES))
        if unknown:
            raise ValueError(f"features: unknown Textract feature(s) {unknown}; allowed: {list(TEXTRACT_FEATURES)}")
        stack = Stack.of(self)
        self.features = tuple(features)

        self.topic = sns.Topic(self, "CompletionTopic", master_key=key, enforce_ssl=True, display_name="Textract job completion")
        self.publish_role = iam.Role(
            self,
            "TextractPublishRole",
            assumed_by=iam.ServicePrincipal("textract.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="Lets Textract publish job completion to the data-prep topic",
        )
        # Explicit actions: grant_publish would add kms:GenerateDataKey* (a wildcard action).
        self.publish_role.add_to_principal_policy(
            iam.PolicyStatement(sid="PublishCompletion", actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        key.grant(self.publish_role, "kms:GenerateDataKey", "kms:Decrypt")

        self.jobs = dynamodb.Table(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            removal_policy=removal_policy,
        )

        env = {
            **(environment or {}),
            "TEXTRACT_FEATURES": ",".join(self.features),
            "TEXTRACT_TOPIC_ARN": self.topic.topic_arn,
            "TEXTRACT_ROLE_ARN": self.publish_role.role_arn,
            "JOBS_TABLE": self.jobs.table_name,
        }
        self.start_function = PlatformFunction(
            self,
            "StartFunction",
            entry="data_prep_extract_start",
            invoked_by="the data-prep state machine (LambdaInvoke with a task token, synchronous)",
            runtime_packages=["data_prep"],
            key=key,
            network=network,
            environment=env,
            description="Data prep: start a Textract job and park the workflow's task token",
            timeout=Duration.seconds(30),
            log_retention=log_retention,
        )
        start = self.start_function
        self.jobs.grant(start.role, "dynamodb:PutItem")
        # Textract reads the document with the caller's credentials.
        data.grant_read(start.role, f"{source_prefix}*")
        self.publish_role.grant_pass_role(start.role)
        start_policy = iam.Policy(
            self,
            "StartTextractPolicy",
            roles=[start.role],
            statements=[
                iam.PolicyStatement(
                    sid="StartTextractJobs",
                    actions=["textract:StartDocumentAnalysis", "textract:StartDocumentTextDetection"],
                    resources=["*"],
                )
            ],
        )
        acknowledge(
            start_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Textract StartDocumentAnalysis/StartDocumentTextDetection support no resource-level permissions.",
        )
        scanner_exception(start_policy, "unconstrained-write",
                          "Textract StartDocumentAnalysis/StartDocumentTextDetection take no resource ARN and no "
                          "condition key; the documents they read are limited by the bucket grants of this role.")

        self.result_function = PlatformFunction(
            self,
            "ResultFunction",
            entry="data_prep_extract_result",
            runtime_packages=["data_prep"],
            key=key,
            network=network,
            environment=env,
            description="Data prep: read a finished Textract job (all NextToken pages) and resume the workflow",
            memory_size=1024,
            timeout=Duration.minutes(5),
            log_retention=log_retention,
            dead_letter_queue=dead_letter_queue,
        )
        result = self.result_function
        result.function.add_event_source(sources.SnsEventSource(self.topic, dead_letter_queue=dead_letter_queue))
        self.jobs.grant(result.role, "dynamodb:GetItem", "dynamodb:DeleteItem")
        artifacts.grant_write(result.role, f"{work_prefix}*")
        get_policy = iam.Policy(
            self,
            "GetTextractPolicy",
            roles=[result.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadTextractResults",
                    actions=["textract:GetDocumentAnalysis", "textract:GetDocumentTextDetection"],
                    resources=["*"],
                )
            ],
        )
        acknowledge(
            get_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Textract GetDocumentAnalysis/GetDocumentTextDetection support no resource-level permissions.",
        )

    def grant_task_response(self, state_machine: sfn.IStateMachine) -> None:
        """Let the result function answer ``state_machine``'s waiting tasks."""
        state_machine.grant_task_response(self.result_function.role)
