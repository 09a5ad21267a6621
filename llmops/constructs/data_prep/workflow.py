"""DataPrepWorkflow: the Step Functions state machine that turns raw uploads into curated text.

    Validate -> (textract?) Extract [waitForTaskToken] -> Enrich -> Custom step -> Publish
                                   any error ---------------------------------> Quarantine

Every task retries ``ServiceThrottled`` (the functions' name for throttling that outlived
the SDK's retries) and Lambda throttling with exponential backoff and full jitter; every
other error is caught and sent to Quarantine, which copies the input under ``quarantine/``
with a reason file and an EventBridge event. The machine is STANDARD, traced with X-Ray,
logs ALL events to a CMK-encrypted log group, and its data is encrypted with the platform key.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from llmops.constructs.core.scanner import scanner_exception
from llmops.nag import acknowledge

THROTTLING_ERRORS = ["ServiceThrottled", "Lambda.TooManyRequestsException"]
# Time the steps other than the Textract wait may take, retries included (minutes).
STEPS_ALLOWANCE_MINUTES = 120


class DataPrepWorkflow(Construct):
    """The state machine over the step functions it is given (each replaceable)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        validate: lambda_.IFunction,
        extract_start: lambda_.IFunction,
        enrich: lambda_.IFunction,
        custom_step: lambda_.IFunction,
        publish: lambda_.IFunction,
        quarantine: lambda_.IFunction,
        extraction_timeout: Duration = Duration.hours(2),
        execution_timeout: Duration | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        throttle_max_attempts: int = 6,
    ) -> None:
        super().__init__(scope, id)
        if throttle_max_attempts < 1:
            raise ValueError(f"throttle_max_attempts: must be at least 1, got {throttle_max_attempts}")
        self.throttle_max_attempts = throttle_max_attempts
        # The execution must outlive the Textract wait by the other steps' worst case (their
        # Lambda timeouts and throttling retries), or a slow job times the whole execution out
        # before the task timeout can route the document to quarantine.
        minimum = Duration.minutes(extraction_timeout.to_minutes() + STEPS_ALLOWANCE_MINUTES)
        execution_timeout = execution_timeout or minimum
        if execution_timeout.to_minutes() < minimum.to_minutes():
            raise ValueError(
                f"execution_timeout: {execution_timeout.to_minutes()} min must be at least the extraction timeout "
                f"plus {STEPS_ALLOWANCE_MINUTES} min ({minimum.to_minutes()} min), or slow jobs skip quarantine"
            )
        self.execution_timeout = execution_timeout

        quarantine_task = tasks.LambdaInvoke(
            self,
            "Quarantine",
            lambda_function=quarantine,
            payload=sfn.TaskInput.from_object(
                {
                    "input.$": "$",
                    "error.$": "$.error",
                    "execution_id.$": "$$.Execution.Id",
                }
            ),
            payload_response_only=True,
            result_path="$.quarantine",
            comment="Copy the input to quarantine/, write <key>.reason.json, emit 'Document Quarantined'",
        )
        self._retry(quarantine_task)
        quarantine_task.next(sfn.Succeed(self, "Quarantined", comment="Bad input handled: see quarantine/ and the event"))
        self.quarantine_state = quarantine_task

        validate_task = self._task("Validate", validate, "$.document", "Classify the upload: type, size, encryption")
        extract_task = tasks.LambdaInvoke(
            self,
            "Extract",
            lambda_function=extract_start,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"document.$": "$.document", "task_token": sfn.JsonPath.task_token, "execution_id.$": "$$.Execution.Id"}
            ),
            result_path="$.extraction",
            task_timeout=sfn.Timeout.duration(extraction_timeout),
            comment="Start Textract; wait for its SNS completion (task token), no polling",
        )
        self._guard(extract_task)
        enrich_task = self._task("Enrich", enrich, "$.enriched", "Comprehend: PII redaction, language, entities, key phrases")
        custom_task = tasks.LambdaInvoke(
            self,
            "CustomStep",
            lambda_function=custom_step,
            payload=sfn.TaskInput.from_object({"document.$": "$.document", "enriched_key.$": "$.enriched.enriched_key"}),
            payload_response_only=True,
            result_path="$.custom",
            comment="Extension point: the platform team's own cleaning or filtering",
        )
        self._guard(custom_task)
        publish_task = self._task("Publish", publish, "$.published", "Curated document or dataset version")

        route = sfn.Choice(self, "NeedsTextract", comment="PDF and images go through Textract; text and JSONL do not")
        route.when(sfn.Condition.string_equals("$.document.kind", "textract"), extract_task)
        route.otherwise(enrich_task)
        extract_task.next(enrich_task)
        definition = validate_task.next(route)
        enrich_task.next(custom_task).next(publish_task).next(sfn.Succeed(self, "Prepared"))

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=execution_timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(key, Duration.minutes(5)),
            comment="LLMOps data prep: raw/ upload -> curated/ document or datasets/ version",
        )

        self._acknowledge_role(validate, extract_start, enrich, custom_step, publish, quarantine)

        failed = cloudwatch.MathExpression(
            expression="failed + timedout + aborted",
            using_metrics={
                "failed": self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                "timedout": self.state_machine.metric_timed_out(period=Duration.minutes(5), statistic="Sum"),
                "aborted": self.state_machine.metric_aborted(period=Duration.minutes(5), statistic="Sum"),
            },
            period=Duration.minutes(5),
            label="Failed, timed-out or aborted executions",
        )
        self.failed_executions_alarm = cloudwatch.Alarm(
            self,
            "FailedExecutionsAlarm",
            metric=failed,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="Data-prep executions failed outside the quarantine path (the workflow itself is broken)",
        )

    def _acknowledge_role(self, *functions: lambda_.IFunction) -> None:
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        stack = Stack.of(self)
        for fn in functions:
            cfn = fn.node.default_child
            if cfn is None:
                continue  # an imported function: its ARN has no logical id to name
            logical_id = stack.resolve(stack.get_logical_id(cfn))
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "Step Functions' LambdaInvoke grants invoke on this one function and its versions/aliases (ARN:*).",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Log delivery (logs:*LogDelivery, DescribeLogGroups/ResourcePolicies) and X-Ray tracing calls "
            "a state machine makes support no resource-level permissions.",
        )
        scanner_exception(policy, "unconstrained-write",
                          "The log-delivery and X-Ray writes CDK grants for state machine logging and tracing take no "
                          "resource ARN or narrowing condition key (Step Functions logging docs grant them on \"*\").")

    def _retry(self, task: sfn.TaskStateBase) -> None:
        task.add_retry(
            errors=THROTTLING_ERRORS,
            interval=Duration.seconds(5),
            max_attempts=self.throttle_max_attempts,
            backoff_rate=2.0,
            max_delay=Duration.minutes(5),
            jitter_strategy=sfn.JitterType.FULL,
        )

    def _guard(self, task: sfn.TaskStateBase) -> None:
        self._retry(task)
        task.add_catch(self.quarantine_state, errors=["States.ALL"], result_path="$.error")

    def _task(self, name: str, fn: lambda_.IFunction, result_path: str, comment: str) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=fn,
            # No payload: the function gets the whole state (the S3 event plus earlier results).
            payload_response_only=True,
            result_path=result_path,
            comment=comment,
        )
        self._guard(task)
        return task

    def metric_failed(self, **kwargs) -> cloudwatch.Metric:
        return self.state_machine.metric_failed(**kwargs)
