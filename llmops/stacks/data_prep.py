"""DataPrepStack: raw uploads -> Textract -> Comprehend redaction -> curated text and datasets.

An EventBridge rule on the foundation data bucket's ``raw/`` "Object Created" events starts
the ``DataPrepWorkflow`` state machine (its DLQ catches events that could not start it).
Each step has its own function and role; bad input ends under ``quarantine/`` with a reason
and an event. Ground Truth labeling (workteam + jobs) is on when ``data_prep.workteam.enabled``.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.data_prep import DataPrepWorkflow, DocumentExtraction, LabelingJobs, LabelingWorkteam, PiiRedaction
from llmops.constructs.core import DeadLetterQueue, PlatformFunction, retention_days
from llmops.stacks.foundation import FoundationStack, removal_policy

RAW_PREFIX = "raw/"
CURATED_PREFIX = "curated/"
QUARANTINE_PREFIX = "quarantine/"
DATASETS_PREFIX = "datasets/"
WORK_PREFIX = "dataprep/work/"


class DataPrepStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = env_config
        prep = cfg.data_prep
        key, data, artifacts, network = foundation.key, foundation.data, foundation.artifacts, foundation.network
        log_retention = retention_days(cfg.log_retention_days)
        common_env = {
            "DATA_BUCKET": data.bucket_name,
            "ARTIFACTS_BUCKET": artifacts.bucket_name,
            "KMS_KEY_ARN": key.key_arn,
        }

        self.dead_letter_queue = DeadLetterQueue(
            self, "DeadLetterQueue", key=key, purpose="the data-prep rules, subscriptions and async functions",
            alarm_actions=foundation.alarm_actions,
        )

        self.extraction = DocumentExtraction(
            self,
            "Extraction",
            key=key,
            data=data,
            artifacts=artifacts,
            network=network,
            dead_letter_queue=self.dead_letter_queue,
            features=prep.textract_features,
            source_prefix=RAW_PREFIX,
            work_prefix=WORK_PREFIX,
            environment=common_env,
            log_retention=log_retention,
            removal_policy=removal_policy(cfg),
        )
        self.redaction = PiiRedaction(
            self,
            "Redaction",
            key=key,
            data=data,
            artifacts=artifacts,
            network=network,
            pii_entity_types=prep.pii_entity_types,
            mask=prep.mask,
            min_score=prep.pii_min_score,
            classifier_endpoint_arn=prep.custom_classifier_endpoint_arn,
            source_prefix=RAW_PREFIX,
            work_prefix=WORK_PREFIX,
            environment=common_env,
            log_retention=log_retention,
        )

        def step(id: str, entry: str, description: str, **kw) -> PlatformFunction:
            return PlatformFunction(
                self, id, entry=entry, runtime_packages=["data_prep"], key=key, network=network,
                environment=common_env, description=description, log_retention=log_retention,
                invoked_by="a data-prep state machine task (LambdaInvoke, synchronous)", **kw,
            )

        self.validate_function = step("ValidateFunction", "data_prep_validate", "Data prep: classify an upload or reject it")
        data.grant_read(self.validate_function.role, RAW_PREFIX)
        self.custom_function = step(
            "CustomStepFunction", "data_prep_custom", "Data prep: extension point for custom cleaning (default: normalise whitespace)",
            timeout=Duration.minutes(2),
        )
        artifacts.grant_read(self.custom_function.role, WORK_PREFIX)
        artifacts.grant_write(self.custom_function.role, WORK_PREFIX)
        self.publish_function = step(
            "PublishFunction", "data_prep_publish", "Data prep: write curated documents and dataset versions",
            timeout=Duration.minutes(2), memory_size=1024,
        )
        artifacts.grant_read(self.publish_function.role, WORK_PREFIX)
        data.grant_write(self.publish_function.role, CURATED_PREFIX)
        data.grant_read(self.publish_function.role, DATASETS_PREFIX)  # lists versions to take the next N
        data.grant_write(self.publish_function.role, DATASETS_PREFIX)
        self.quarantine_function = step("QuarantineFunction", "data_prep_quarantine", "Data prep: quarantine bad input with its reason")
        self.quarantine_function.add_environment("EVENT_BUS_NAME", "default")
        data.grant_read(self.quarantine_function.role, RAW_PREFIX)
        data.grant_write(self.quarantine_function.role, QUARANTINE_PREFIX)
        self.quarantine_function.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PutQuarantineEvents",
                actions=["events:PutEvents"],
                resources=[f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default"],
            )
        )

        self.workflow = DataPrepWorkflow(
            self,
            "Workflow",
            key=key,
            validate=self.validate_function.function,
            extract_start=self.extraction.start_function.function,
            enrich=self.redaction.function.function,
            custom_step=self.custom_function.function,
            publish=self.publish_function.function,
            quarantine=self.quarantine_function.function,
            extraction_timeout=Duration.minutes(prep.extraction_timeout_minutes),
            log_retention=log_retention,
        )
        self.state_machine = self.workflow.state_machine
        self.extraction.grant_task_response(self.state_machine)

        self.upload_rule = events.Rule(
            self,
            "RawUploads",
            description="Data prep: objects created under raw/ in the data bucket start the workflow",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [data.bucket_name]}, "object": {"key": [{"prefix": RAW_PREFIX}]}},
            ),
        )
        self.upload_rule.add_target(
            targets.SfnStateMachine(
                self.state_machine, dead_letter_queue=self.dead_letter_queue, retry_attempts=8, max_event_age=Duration.hours(24)
            )
        )

        # Every alarm notifies the environment's alerts (foundation alarm topic).
        self.dead_letter_alarm = self.dead_letter_queue.alarm
        foundation.alarm_action(self.workflow.failed_executions_alarm)
        self.alarm_topic = foundation.alarm_topic

        self.workteam: LabelingWorkteam | None = None
        self.labeling: LabelingJobs | None = None
        if prep.workteam.enabled:
            team = prep.workteam
            if team.existing_workteam_arn:
                workteam_arn = team.existing_workteam_arn  # used as is: nothing of the team is created
            else:
                workforce = team.existing_workforce
                self.workteam = LabelingWorkteam(
                    self,
                    "Workteam",
                    name=f"{cfg.name_prefix}-labeling",
                    key=key,
                    description=team.description,
                    notify_workers=team.notify_workers,
                    removal_policy=removal_policy(cfg),
                    existing_workforce=(workforce.user_pool_id, workforce.client_id) if workforce else None,
                )
                workteam_arn = self.workteam.workteam_arn
            self.labeling = LabelingJobs(
                self,
                "Labeling",
                key=key,
                data=data,
                artifacts=artifacts,
                network=network,
                workteam_arn=workteam_arn,
                dead_letter_queue=self.dead_letter_queue,
                log_retention=log_retention,
            )
            CfnOutput(self, "LabelingFunctionName", value=self.labeling.function.function.function_name)
            CfnOutput(self, "WorkteamArn", value=workteam_arn)

        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
