"""LabelingWorkteam: a private Ground Truth workteam backed by a Cognito user pool.

CloudFormation has ``AWS::SageMaker::Workteam`` but no labeling-job type: jobs start through
the API (``LabelingJobs`` below and ``lambdas/data_prep_labeling``). Workers are Cognito users
in the team's group; the pool requires MFA (TOTP) and strong passwords, and admins create
users (no self sign-up).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.core.secure_bucket import SecureBucket
from llmops.nag import acknowledge, acknowledge_wildcard_resource


class LabelingWorkteam(Construct):
    """A private workteam; with ``existing_workforce=(user_pool_id, client_id)`` the team joins the
    account's existing private workforce (its user pool gets the labelers group) instead of
    creating a pool, because an account has one private workforce per region and a second
    ``AWS::SageMaker::Workteam`` on another pool fails.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        key: kms.IKey,
        description: str = "LLMOps data labeling team",
        notify_workers: bool = False,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        existing_workforce: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not name or len(name) > 63:
            raise ValueError(f"name: workteam names are 1-63 characters, got {name!r}")
        self.user_pool: cognito.UserPool | None = None
        if existing_workforce is not None:
            pool_id, client_id = existing_workforce
            self.group = cognito.CfnUserPoolGroup(
                self, "Labelers", user_pool_id=pool_id, group_name=f"{name}-labelers", description="Ground Truth labelers"
            )
            self._workteam(name, key, description, notify_workers, pool_id, client_id)
            return
        self.user_pool = cognito.UserPool(
            self,
            "Workers",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal_policy,
        )
        for finding in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            acknowledge(
                self.user_pool,
                finding,
                "Cognito threat protection needs the Plus feature plan (per-user cost); the pool admits only "
                "admin-created labelers with required TOTP MFA and 14-character passwords.",
            )
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=f"{name}-{Aws.ACCOUNT_ID}")
        )
        self.client = self.user_pool.add_client(
            "LabelingPortal",
            generate_secret=True,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.EMAIL, cognito.OAuthScope.OPENID, cognito.OAuthScope.PROFILE],
            ),
            prevent_user_existence_errors=True,
        )
        self.group = cognito.CfnUserPoolGroup(
            self, "Labelers", user_pool_id=self.user_pool.user_pool_id, group_name=f"{name}-labelers", description="Ground Truth labelers"
        )
        self._workteam(name, key, description, notify_workers, self.user_pool.user_pool_id, self.client.user_pool_client_id)

    def _workteam(self, name: str, key: kms.IKey, description: str, notify_workers: bool, pool_id: str, client_id: str) -> None:
        self.notification_topic: sns.Topic | None = None
        notification = None
        if notify_workers:
            self.notification_topic = sns.Topic(self, "TaskNotifications", master_key=key, enforce_ssl=True)
            # CDK's SSL-only topic policy replaces SNS's default one: let Ground Truth publish.
            self.notification_topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowGroundTruthNotifications",
                    principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[self.notification_topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )
            notification = sagemaker.CfnWorkteam.NotificationConfigurationProperty(
                notification_topic_arn=self.notification_topic.topic_arn
            )
        self.workteam = sagemaker.CfnWorkteam(
            self,
            "Workteam",
            workteam_name=name,
            description=description,
            member_definitions=[
                sagemaker.CfnWorkteam.MemberDefinitionProperty(
                    cognito_member_definition=sagemaker.CfnWorkteam.CognitoMemberDefinitionProperty(
                        cognito_user_pool=pool_id,
                        cognito_client_id=client_id,
                        cognito_user_group=self.group.ref,
                    )
                )
            ],
            notification_configuration=notification,
        )

    @property
    def workteam_arn(self) -> str:
        # Ref of AWS::SageMaker::Workteam is its ARN.
        return self.workteam.ref


class LabelingJobs(Construct):
    """Start Ground Truth jobs from curated documents and publish their output as dataset versions.

    - ``start_function``: invoked with ``{"action": "start", ...}`` (see the handler).
    - a rule on "SageMaker Ground Truth Labeling Job State Change" (Completed) runs the same
      function, which converts the output manifest into the next dataset version.
    - ``qa_pre``/``qa_post``: the custom question-answer task's pre- and post-annotation Lambdas.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        data: SecureBucket,
        artifacts: SecureBucket,
        network: PlatformNetwork | None,
        workteam_arn: str,
        dead_letter_queue: sqs.IQueue,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "GroundTruthRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Ground Truth labeling jobs: read manifests and templates, write output",
        )
        artifacts.grant_read(self.role, "labeling/")
        artifacts.grant_write(self.role, "labeling/")
        key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")
        self._grant_ground_truth_runtime()

        self.qa_pre = PlatformFunction(
            self, "QaPreAnnotation", invoked_by="Ground Truth pre-annotation (synchronous RequestResponse)", entry="data_prep_qa_pre", runtime_packages=["data_prep"], key=key, network=network,
            description="Ground Truth pre-annotation for the question-answer task", log_retention=log_retention,
        )
        self.qa_post = PlatformFunction(
            self, "QaPostAnnotation", invoked_by="Ground Truth consolidation (synchronous RequestResponse)", entry="data_prep_qa_post", runtime_packages=["data_prep"], key=key, network=network,
            description="Ground Truth consolidation for the question-answer task", log_retention=log_retention,
        )
        artifacts.grant_read(self.qa_post.role, "labeling/")
        # Exact function ARNs: grant_invoke would add the versions wildcard (ARN:*).
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeQaAnnotationLambdas",
                actions=["lambda:InvokeFunction"],
                resources=[self.qa_pre.function_arn, self.qa_post.function_arn],
            )
        )

        self.function = PlatformFunction(
            self,
            "Function",
            entry="data_prep_labeling",
            runtime_packages=["data_prep"],
            key=key,
            network=network,
            environment={
                "DATA_BUCKET": data.bucket_name,
                "ARTIFACTS_BUCKET": artifacts.bucket_name,
                "LABELING_ROLE_ARN": self.role.role_arn,
                "WORKTEAM_ARN": workteam_arn,
                "KMS_KEY_ARN": key.key_arn,
                "QA_PRE_LAMBDA_ARN": self.qa_pre.function_arn,
                "QA_POST_LAMBDA_ARN": self.qa_post.function_arn,
                "AWS_PARTITION": Aws.PARTITION,
            },
            description="Ground Truth: start labeling jobs; publish completed jobs as dataset versions",
            memory_size=1024,
            timeout=Duration.minutes(5),
            log_retention=log_retention,
            dead_letter_queue=dead_letter_queue,
        )
        fn_role = self.function.role
        data.grant_read(fn_role, "curated/")
        data.grant_read(fn_role, "datasets/")
        data.grant_write(fn_role, "datasets/")
        artifacts.grant_read(fn_role, "labeling/")
        artifacts.grant_write(fn_role, "labeling/")
        self.role.grant_pass_role(fn_role)
        job_arn = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:labeling-job/*"
        jobs_policy = iam.Policy(
            self,
            "LabelingJobsPolicy",
            roles=[fn_role],
            statements=[
                iam.PolicyStatement(
                    sid="ManageLabelingJobs",
                    actions=["sagemaker:CreateLabelingJob", "sagemaker:DescribeLabelingJob", "sagemaker:AddTags"],
                    resources=[job_arn],
                )
            ],
        )
        acknowledge(
            jobs_policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:labeling-job/*]",
            "Labeling job names are chosen per request at run time; the grant covers this account's labeling jobs only.",
        )
        self.completion_rule = events.Rule(
            self,
            "JobCompleted",
            description="Data prep: Ground Truth labeling job completed -> dataset version",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Ground Truth Labeling Job State Change"],
                detail={"LabelingJobStatus": ["Completed"]},
            ),
        )
        self.completion_rule.add_target(
            targets.LambdaFunction(self.function.function, dead_letter_queue=dead_letter_queue, retry_attempts=4, max_event_age=Duration.hours(12))
        )

    def _grant_ground_truth_runtime(self) -> None:
        """What Ground Truth does as this role: job logs and metrics, and for automated labeling the
        training, batch-transform jobs and models it starts with the same role (AWS docs, "Create a
        SageMaker Execution Role for a Ground Truth Labeling Job" and AmazonSageMakerGroundTruthExecution)."""
        partition, region, account = Aws.PARTITION, Aws.REGION, Aws.ACCOUNT_ID

        def arn(service: str, resource: str) -> str:
            return f"arn:{partition}:{service}:{region}:{account}:{resource}"

        log_groups = ("LabelingJobs", "TrainingJobs", "TransformJobs")
        jobs = ("training-job/*", "transform-job/*", "model/*")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            sid="LabelingJobLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[arn("logs", f"log-group:/aws/sagemaker/{g}:*") for g in log_groups],
        ))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            sid="AutomatedLabelingJobs",
            actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                     "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
                     "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel"],
            resources=[arn("sagemaker", j) for j in jobs],
        ))
        # Automated labeling runs its training and transform jobs as this same role.
        self.role.add_to_principal_policy(iam.PolicyStatement(
            sid="PassRoleToAutomatedLabeling",
            actions=["iam:PassRole"],
            resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        metrics = iam.Policy(self, "GroundTruthMetricsPolicy", roles=[self.role], statements=[iam.PolicyStatement(
            sid="LabelingJobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )])
        acknowledge(metrics, "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:PutMetricData has no resource-level permissions; the grant is limited to /aws/sagemaker/* namespaces.")
        for g in log_groups:
            acknowledge_wildcard_resource(self.role, arn("logs", f"log-group:/aws/sagemaker/{g}:*"),
                                          f"Ground Truth jobs log to streams named after run-time job names in /aws/sagemaker/{g}.")
        for j in jobs:
            acknowledge_wildcard_resource(self.role, arn("sagemaker", j),
                                          "Automated labeling names its training/transform jobs and models after the labeling job at run time.")
