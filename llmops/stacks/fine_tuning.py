"""FineTuningStack: SageMaker Pipelines that tune open models on the environment's datasets.

Per use case (``fine_tuning.use_cases``): a pipeline (prepare -> train -> evaluate -> check ->
register), a model package group, a trigger on new dataset versions and an SSM parameter holding
the newest approved package. Shared: the execution role, the step-code asset, the jobs'
security group and a dead-letter queue for undeliverable events.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aws_cdk import Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.core import DeadLetterQueue
from llmops.constructs.fine_tuning import FineTuningPipeline, ModelRegistry, load_compiled_definitions
from llmops.constructs.core.sagemaker_role import sagemaker_unscoped_policy
from llmops.nag import acknowledge
from llmops.stacks.foundation import FoundationStack
from pipelines import profiles
from pipelines.code_archive import write_code_archive

# Where run outputs, base models and checkpoints live in the artifacts bucket.
RUNS_PREFIX = "fine-tuning/"
BASE_MODELS_PREFIX = "base-models/"
DATASETS_PREFIX = "datasets/"
# Hugging Face / Neuron deep-learning containers live in AWS-owned ECR registries.
DLC_REPOSITORIES = ("huggingface-pytorch-training", "huggingface-pytorch-training-neuronx", "huggingface-pytorch-tgi-inference", "djl-inference")


class FineTuningStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = env_config
        ft = cfg.fine_tuning
        definitions = load_compiled_definitions(cfg)  # fails synth, naming the field, when stale
        key, artifacts, data, network = foundation.key, foundation.artifacts, foundation.data, foundation.network
        prefix = cfg.name_prefix

        # --- step code: a CDK asset, never uploaded by the SageMaker SDK ------------------------
        archive = write_code_archive(Path(tempfile.gettempdir()) / "llmops-pipeline-code")
        self.code = s3_assets.Asset(self, "StepCode", path=str(archive))

        # --- jobs' network ----------------------------------------------------------------------
        self.security_group = network.security_group_for(self, "JobSecurityGroup", "SageMaker fine-tuning jobs")
        # Nodes of a distributed training job talk to each other (NCCL / torchrun rendezvous).
        self.security_group.add_ingress_rule(self.security_group, ec2.Port.all_traffic(), "between training nodes")
        subnet_ids = network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnet_ids
        self._job_subnet_ids = subnet_ids

        # --- execution role (pipeline and its jobs) ---------------------------------------------
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker fine-tuning pipelines of {prefix}",
        )
        self._grant_execution(cfg)
        # Exactly the archive object (Asset.grant_read would allow s3:GetObject* on the whole bootstrap bucket).
        self.role.add_to_policy(iam.PolicyStatement(
            sid="ReadStepCode",
            actions=["s3:GetObject"],
            resources=[f"arn:{self.partition}:s3:::{self.code.s3_bucket_name}/{self.code.s3_object_key}"],
        ))
        # S3Prefix inputs list the prefix before downloading: ListBucket limited to the archive's key.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="ListStepCode",
            actions=["s3:ListBucket"],
            resources=[f"arn:{self.partition}:s3:::{self.code.s3_bucket_name}"],
            conditions={"StringLike": {"s3:prefix": [self.code.s3_object_key + "*"]}},
        ))
        # The pipeline passes this same role to every processing and training job it starts.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="PassRoleToJobs",
            actions=["iam:PassRole"],
            resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        artifacts.grant_read_write(self.role, RUNS_PREFIX)  # prepared data, checkpoints, models, reports
        artifacts.grant_read(self.role, BASE_MODELS_PREFIX)
        data.grant_read(self.role, DATASETS_PREFIX)
        # Volume and output encryption with the CMK: SageMaker creates grants on the role's behalf.
        key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext")

        # --- dead-letter queue for events that could not be delivered ---------------------------
        self.dead_letter_queue = DeadLetterQueue(
            self, "DeadLetterQueue", key=key, purpose="the fine-tuning trigger and approval rules",
            alarm_actions=foundation.alarm_actions,
        )

        # --- registry, pipelines, triggers ------------------------------------------------------
        groups = {u: profiles.model_package_group_name(cfg, u) for u in ft.use_cases}
        self.registry = ModelRegistry(
            self, "Registry",
            name_prefix=prefix,
            groups=groups,
            key=key,
            dead_letter_queue=self.dead_letter_queue,
            network=network,
            reader_accounts=ft.reader_accounts,
            descriptions={u: c.description for u, c in ft.use_cases.items() if c.description},
        )
        self._grant_readers(cfg, artifacts, key)

        self.trigger_role = iam.Role(self, "TriggerRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                                     description="EventBridge: start fine-tuning pipelines on new dataset versions")
        # Queue policy only: grant_send_messages would also add an unconditioned key statement for
        # EventBridge beside the foundation key's account-scoped one.
        self.dead_letter_queue.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeRulesOfThisAccount",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[self.dead_letter_queue.queue_arn],
            conditions={"ArnLike": {"aws:SourceArn": f"arn:{self.partition}:events:{self.region}:{self.account}:rule/*"}},
        ))
        self.pipelines: dict[str, FineTuningPipeline] = {}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for use_case, case in sorted(ft.use_cases.items()):
            pipeline = FineTuningPipeline(
                self, f"Pipeline-{use_case}",
                pipeline_name=profiles.pipeline_name(cfg, use_case),
                definition=definitions[use_case],
                role=self.role,
                artifacts_bucket_name=artifacts.bucket_name,
                data_bucket_name=data.bucket_name,
                key_arn=key.key_arn,
                code=self.code,
                subnet_ids=subnet_ids,
                security_group_id=self.security_group.security_group_id,
                description=case.description or f"Fine-tune {case.base_model or ft.base_model} for {use_case}",
                tags=cfg.tags,
            )
            pipeline.node.add_dependency(self.registry.groups[use_case])
            pipeline.node.add_dependency(self.role)
            pipeline.grant_start_execution(self.trigger_role)
            pipeline.start_on_dataset_version(
                "OnNewDatasetVersion",
                data_bucket_name=data.bucket_name,
                dataset=case.dataset,
                dead_letter_queue=self.dead_letter_queue,
                role=self.trigger_role,
            )
            self.pipelines[use_case] = pipeline
            self.alarms[use_case] = cloudwatch.Alarm(
                self, f"ExecutionsFailed-{use_case}",
                alarm_description=f"A fine-tuning run of {use_case} failed (including the quality gate)",
                metric=pipeline.metric_executions_failed(),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            foundation.alarm_action(self.alarms[use_case])

    def _grant_execution(self, cfg: EnvironmentConfig) -> None:
        """Least privilege for the pipeline service and the jobs it starts (same role)."""
        role = self.role
        region, account, partition = self.region, self.account, self.partition
        groups = [profiles.model_package_group_name(cfg, u) for u in cfg.fine_tuning.use_cases]

        def arn(service: str, resource: str, acct: str = account) -> str:
            return f"arn:{partition}:{service}:{region}:{acct}:{resource}"

        statements = [
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                         "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                         "sagemaker:AddTags", "sagemaker:ListTags"],
                # Pipelines name their jobs "pipelines-<execution>-<step>-<suffix>".
                resources=[arn("sagemaker", "processing-job/pipelines-*"), arn("sagemaker", "training-job/pipelines-*")],
            ),
            iam.PolicyStatement(
                sid="RegisterModelPackages",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags",
                         "sagemaker:DescribeModelPackageGroup"],
                resources=[arn("sagemaker", f"model-package-group/{g}") for g in groups]
                + [arn("sagemaker", f"model-package/{g}/*") for g in groups],
            ),
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[arn("logs", "log-group:/aws/sagemaker/ProcessingJobs:*"), arn("logs", "log-group:/aws/sagemaker/TrainingJobs:*")],
            ),
            iam.PolicyStatement(
                sid="PullDeepLearningContainers",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[f"arn:{partition}:ecr:{region}:*:repository/{r}" for r in DLC_REPOSITORIES],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        # APIs without resource-level permissions: ECR login, VPC ENIs for jobs, job metrics.
        sagemaker_unscoped_policy(self, "ExecutionUnscopedPolicy", role=role, subnet_ids=self._job_subnet_ids,
                                  sid_prefix="Job", workload="jobs")
        default_policy = role.node.find_child("DefaultPolicy")
        nag = self.nag_arn
        for finding, reason in {
            nag("sagemaker", "processing-job/pipelines-*"):
                "SageMaker Pipelines generates job names at run time (pipelines-<execution>-<step>-<suffix>).",
            nag("sagemaker", "training-job/pipelines-*"):
                "SageMaker Pipelines generates job names at run time (pipelines-<execution>-<step>-<suffix>).",
            nag("logs", "log-group:/aws/sagemaker/ProcessingJobs:*"):
                "Processing jobs log to streams named after run-time job names in this SageMaker log group.",
            nag("logs", "log-group:/aws/sagemaker/TrainingJobs:*"):
                "Training jobs log to streams named after run-time job names in this SageMaker log group.",
            **{nag("ecr", f"repository/{r}", account="*"):
               "AWS deep-learning containers are published from AWS-owned registry accounts that differ by region."
               for r in DLC_REPOSITORIES},
            **{nag("sagemaker", f"model-package/{g}/*"):
               "Model package versions of this use case's group are created at run time (one per approved run)."
               for g in groups},
        }.items():
            acknowledge(default_policy, finding, reason)

    def nag_arn(self, service: str, resource: str, account: str | None = None) -> str:
        """The IAM5 finding id cdk-nag reports for a wildcard resource ARN of this stack."""
        region = "<AWS::Region>" if Token.is_unresolved(self.region) else self.region
        if account is None:
            account = "<AWS::AccountId>" if Token.is_unresolved(self.account) else self.account
        return f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{service}:{region}:{account}:{resource}]"

    def _grant_readers(self, cfg: EnvironmentConfig, artifacts, key) -> None:
        """Staging/prod accounts deploy approved packages: they read model artifacts and decrypt them.

        The statements go into the foundation's bucket and key policies and name only account ids
        and foundation ARNs, so the foundation stack does not come to depend on this one.
        """
        readers = self.registry.reader_accounts
        if not readers:
            return
        principals = [iam.AccountPrincipal(a) for a in readers]
        artifacts.bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="FineTunedModelReaders",
            principals=principals,
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[artifacts.arn_for_objects(RUNS_PREFIX)],
        ))
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="FineTunedModelReadersDecrypt",
            principals=principals,
            actions=["kms:Decrypt", "kms:DescribeKey"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
        ))
