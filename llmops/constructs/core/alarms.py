"""Alarms every capability needs: dead-letter queues, API 5xx rates and throttles.

Each helper returns the alarms it made; the caller hands them to ``FoundationStack.alarm_action``
so every alarm notifies the environment's alerts (a test walks every template for that).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
# API Gateway's 5XXError averaged over a period is the share of requests that failed.
API_5XX_RATE = 0.05


def dead_letter_alarm(scope: Construct, id: str, queue: sqs.IQueue, purpose: str) -> cloudwatch.Alarm:
    """In alarm as soon as one message waits in ``queue`` (something was not processed)."""
    return cloudwatch.Alarm(
        scope,
        id,
        metric=queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=f"Messages wait in the dead-letter queue of {purpose}",
    )


def api_alarms(
    scope: Construct, id: str, api: apigw.RestApi, functions: Sequence[lambda_.IFunction], *, rate: float = API_5XX_RATE
) -> list[cloudwatch.Alarm]:
    """A 5xx-rate alarm on the API's stage and a throttles alarm on each function behind it."""
    if not 0 < rate < 1:
        raise ValueError(f"rate: a share of requests between 0 and 1, got {rate}")
    alarms = [
        cloudwatch.Alarm(
            scope,
            f"{id}5xxRate",
            metric=api.metric_server_error(period=PERIOD, statistic="Average"),
            threshold=rate,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"More than {rate:.0%} of {api.rest_api_name} requests answered 5xx",
        )
    ]
    for n, fn in enumerate(functions):
        alarms.append(
            cloudwatch.Alarm(
                scope,
                f"{id}Throttles{n}" if n else f"{id}Throttles",
                metric=fn.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Lambda throttled requests of {api.rest_api_name} (concurrency limit reached)",
            )
        )
    alarms.append(
        cloudwatch.Alarm(
            scope,
            f"{id}4xxRate",
            metric=api.metric_client_error(period=PERIOD, statistic="Average"),
            threshold=0.25,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            # Stage throttling answers 429, which API Gateway counts as 4XXError.
            alarm_description=f"More than 25% of {api.rest_api_name} requests answered 4xx (stage throttling answers 429)",
        )
    )
    return alarms
