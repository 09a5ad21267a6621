"""DeadLetterQueue: where events and messages that could not be processed wait, with their reason."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.nag import acknowledge


class DeadLetterQueue(sqs.Queue):
    """A CMK-encrypted, SSL-only SQS queue kept 14 days, for the failures of ``purpose``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        purpose: str,
        retention_period: Duration = Duration.days(14),
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
