"""HumanReviewStack: A2I review of LLM answers, routed off the request path, results fed back.

Routing: the query path flags answers in the interaction log (``metadata.review``, no extra call) and the
monitoring batch scorer puts each flagged one on ``review_queue``; ``human_review_start``
starts one human loop per interaction (idempotent on its id). A2I writes each review under
``reviews/``; ``human_review_results`` turns it into a fine-tuning dataset version (corrected
answers), an evaluation record and review metrics, and quarantines a malformed output with its reason.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.core import DeadLetterQueue, PlatformFunction, retention_days
from llmops.constructs.human_review import HumanReview
from llmops.stacks.foundation import FoundationStack

OUTPUT_PREFIX = "reviews/output/"
EVALUATION_PREFIX = "reviews/evaluation/"
QUARANTINE_PREFIX = "quarantine/reviews/"


class HumanReviewStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig,
                 workteam_arn: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg, key, data = env_config, foundation.key, foundation.data
        self._key_arn = key.key_arn
        review = cfg.human_review
        log_retention = retention_days(cfg.log_retention_days)
        self.review = HumanReview(
            self, "Review", name_prefix=cfg.name_prefix, workteam_arn=workteam_arn, key=key, data=data,
            output_prefix=OUTPUT_PREFIX, workers_per_task=review.workers_per_task,
            task_time_limit_seconds=review.task_time_limit_seconds,
            task_availability_seconds=review.task_availability_seconds, task_title=review.task_title,
            log_retention=log_retention, network=foundation.network,
        )

        # --- routing queue -> StartHumanLoop ----------------------------------------------------
        self.dead_letter_queue = DeadLetterQueue(self, "ReviewDeadLetterQueue", key=key, purpose="the review queue",
                                                alarm_actions=foundation.alarm_actions)
        self.review_queue = sqs.Queue(
            self, "ReviewQueue", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            visibility_timeout=Duration.minutes(3), retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=5),
        )
        self.start_function = PlatformFunction(
            self, "StartFunction", entry="human_review_start", runtime_packages=["human_review"], key=key,
            invoked_by="its SQS event-source mapping (failures return to the review queue and its redrive DLQ)",
            network=foundation.network, description="Human review: start one A2I loop per routed answer",
            environment={"FLOW_DEFINITION_ARN": self.review.flow_definition_arn, "REVIEW_INSTRUCTIONS": review.instructions},
            timeout=Duration.seconds(30), log_retention=log_retention,
        )
        self.start_function.function.add_event_source(sources.SqsEventSource(
            self.review_queue, batch_size=10, report_batch_item_failures=True))
        self.review.grant_start_loop(self.start_function.role)

        # --- results: S3 output -> dataset version, evaluation record, metrics ------------------
        self.results_dead_letter_queue = DeadLetterQueue(self, "ResultsDeadLetterQueue", key=key,
                                                         purpose="review outputs the results function could not process",
                                                         alarm_actions=foundation.alarm_actions)
        self.results_function = PlatformFunction(
            self, "ResultsFunction", entry="human_review_results", runtime_packages=["human_review", "data_prep"], key=key,
            network=foundation.network, description="Human review: reviewed answers -> dataset versions, evaluation set, metrics",
            environment={"REVIEW_DATASET": review.dataset, "EVALUATION_PREFIX": EVALUATION_PREFIX,
                         "DATA_BUCKET": data.bucket_name},
            timeout=Duration.minutes(1), log_retention=log_retention,
            dead_letter_queue=self.results_dead_letter_queue,  # EventBridge invokes it asynchronously
        )
        data.grant_read(self.results_function.role, OUTPUT_PREFIX)
        data.grant_write(self.results_function.role, f"datasets/{review.dataset}/")
        data.grant_read(self.results_function.role, f"datasets/{review.dataset}/")  # the next version number
        data.grant_write(self.results_function.role, EVALUATION_PREFIX)
        data.grant_write(self.results_function.role, QUARANTINE_PREFIX)
        self.results_rule = events.Rule(
            self, "ReviewOutputs", description="Human review: A2I review outputs written under reviews/output/",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [data.bucket_name]}, "object": {"key": [{"prefix": OUTPUT_PREFIX}]}},
            ),
        )
        self.results_rule.add_target(targets.LambdaFunction(
            self.results_function.function, dead_letter_queue=self.results_dead_letter_queue, retry_attempts=3,
            max_event_age=Duration.hours(6),
        ))
        CfnOutput(self, "ReviewQueueUrl", value=self.review_queue.queue_url)
        CfnOutput(self, "FlowDefinitionArn", value=self.review.flow_definition_arn)

    def grant_route(self, grantee: iam.IGrantable) -> None:
        """Let the batch scorer send routed answers to review (the query path only flags them in the log).

        Exact actions: ``grant_send_messages`` would add the kms:ReEncrypt*/GenerateDataKey* wildcards.
        """
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            sid="RouteToReview", actions=["sqs:SendMessage"],
            resources=[self.review_queue.queue_arn]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            sid="EncryptReviewMessages", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self._key_arn]))
