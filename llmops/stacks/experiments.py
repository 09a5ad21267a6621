"""ExperimentsStack: the scheduled judge job of an environment that declares experiments.

An EventBridge schedule (``experiments_judge.schedule``, daily by default) runs the judge function
over every experiment still running; ``aws lambda invoke --payload '{"experiment": NAME}'`` judges
one on demand. It reads the per-record metrics table (``monitoring/metrics/``) and writes verdicts
under ``experiments/verdicts/`` in the data bucket; nothing else. The model variants and prompt
alias weights themselves are driven by the inference and prompt-catalog stacks from the same config.
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from llmops.config import EnvironmentConfig, experiment_specs
from llmops.constructs.core import DeadLetterQueue, PlatformFunction, retention_days
from llmops.stacks.foundation import FoundationStack

METRICS_PREFIX = "monitoring/metrics/"  # the monitoring metrics table (MonitoringStack.METRICS_PREFIX)
VERDICTS_PREFIX = "experiments/verdicts/"  # <experiment>/latest.json is the delivery gate's contract
# Lambda allows 4 KB of environment variables in all; the experiments' specs must leave room for the rest.
MAX_SPEC_BYTES = 3000


class ExperimentsStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig,
                 **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = env_config
        job = cfg.experiments_judge
        key = foundation.key
        specs = json.dumps(experiment_specs(cfg), sort_keys=True, separators=(",", ":"))
        if len(specs.encode()) > MAX_SPEC_BYTES:
            raise ValueError(f"environments.{cfg.name}.experiments: {len(specs.encode())} bytes of experiment specs; the judge "
                             f"function's environment holds at most {MAX_SPEC_BYTES} (fewer experiments, or shorter names)")
        self.dead_letter_queue = DeadLetterQueue(
            self, "JudgeDeadLetterQueue", key=key, purpose="scheduled judge runs that failed after their retries",
            alarm_actions=foundation.alarm_actions)
        self.judge = PlatformFunction(
            self, "JudgeFunction", entry="experiments_judge", runtime_packages=["experiments"], key=key,
            network=foundation.network, description="Experiments: judge every running experiment, write its verdict",
            dead_letter_queue=self.dead_letter_queue,  # the schedule invokes it asynchronously
            memory_size=job.memory_mb, timeout=Duration.minutes(job.timeout_minutes),
            log_retention=retention_days(cfg.log_retention_days),
            environment={"DATA_BUCKET": foundation.data.bucket_name, "EXPERIMENTS": specs,
                         "LOOKBACK_DAYS": str(job.lookback_days), "PLATFORM_ENVIRONMENT_NAME": cfg.name,
                         "POWERTOOLS_METRICS_NAMESPACE": "LLMOps/Experiments"},
        )
        foundation.data.grant_read(self.judge.role, METRICS_PREFIX)
        foundation.data.grant_write(self.judge.role, VERDICTS_PREFIX)
        self.schedule = events.Rule(
            self, "Schedule", description=f"Experiments: judge {', '.join(cfg.experiments)} ({job.schedule})"[:512],
            schedule=events.Schedule.expression(job.schedule))
        self.schedule.add_target(targets.LambdaFunction(
            self.judge.function, dead_letter_queue=self.dead_letter_queue, retry_attempts=2, max_event_age=Duration.hours(6)))
        self.errors_alarm = self.judge.metric_errors(period=Duration.hours(1), statistic="Sum").create_alarm(
            self, "JudgeErrors", alarm_name=f"{cfg.name_prefix}-experiments-judge-errors",
            alarm_description="The experiments judge failed: verdicts are stale (the delivery gate reads latest.json)",
            threshold=1, evaluation_periods=1, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        foundation.alarm_action(self.errors_alarm)
        CfnOutput(self, "JudgeFunctionName", value=self.judge.function.function_name)
        CfnOutput(self, "VerdictsPrefix", value=f"s3://{foundation.data.bucket_name}/{VERDICTS_PREFIX}")
