"""DeadLetterQueue: where events and messages that could not be processed wait, with their reason."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.nag import acknowledge


class DeadLetterQueue(sqs.Queue):
    """A CMK-encrypted, SSL-only SQS queue kept 14 days, for the failures of ``purpose``.

    ``alarm`` goes off when one message waits; pass ``alarm_actions`` (the foundation's
    ``alarm_actions``) so it notifies someone.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        purpose: str,
        retention_period: Duration = Duration.days(14),
        alarm_actions: Sequence[cloudwatch.IAlarmAction] = (),
    ) -> None:
        if not purpose:
            raise ValueError("purpose: say whose failures this queue holds (it is the nag reason)")
        super().__init__(
            scope,
            id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=retention_period,
        )
        acknowledge(self, "AwsSolutions-SQS3", f"This queue is the dead-letter queue of {purpose}.")
        from llmops.constructs.core.alarms import dead_letter_alarm

        self.alarm = dead_letter_alarm(self, "MessagesVisibleAlarm", self, purpose)
        self.alarm.add_alarm_action(*alarm_actions)
