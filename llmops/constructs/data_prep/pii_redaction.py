"""PiiRedaction: the enrich function (Comprehend PII redaction, entities, key phrases, language,
optional custom classifier endpoint) with exactly the Comprehend calls it makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.core.secure_bucket import SecureBucket
from llmops.nag import acknowledge


class PiiRedaction(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        data: SecureBucket,
        artifacts: SecureBucket,
        network: PlatformNetwork | None,
        pii_entity_types: Sequence[str] = ("ALL",),
        mask: str = "[{type}]",
        min_score: float = 0.5,
        classifier_endpoint_arn: str | None = None,
        source_prefix: str = "raw/",
        work_prefix: str = "dataprep/work/",
        environment: Mapping[str, str] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, id)
        if not mask:
            raise ValueError("mask: must not be empty (it replaces each PII span)")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score: must be between 0 and 1, got {min_score}")
        if not pii_entity_types:
            raise ValueError("pii_entity_types: name at least one type, or ALL")
        self.function = PlatformFunction(
            self,
            "Function",
            entry="data_prep_enrich",
            invoked_by="the data-prep state machine (LambdaInvoke, synchronous)",
            runtime_packages=["data_prep"],
            key=key,
            network=network,
            environment={
                **(environment or {}),
                "PII_ENTITY_TYPES": ",".join(pii_entity_types),
                "PII_MASK": mask,
                "PII_MIN_SCORE": str(min_score),
                "CLASSIFIER_ENDPOINT_ARN": classifier_endpoint_arn or "",
            },
            description="Data prep: Comprehend PII redaction, entities, key phrases, language",
            memory_size=1024,
            timeout=Duration.minutes(10),
            log_retention=log_retention,
        )
        role = self.function.role
        data.grant_read(role, f"{source_prefix}*")
        artifacts.grant_read(role, f"{work_prefix}*")
        artifacts.grant_write(role, f"{work_prefix}*")
        detect = iam.Policy(
            self,
            "ComprehendDetectPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ComprehendDetect",
                    actions=[
                        "comprehend:DetectPiiEntities",
                        "comprehend:DetectEntities",
                        "comprehend:DetectKeyPhrases",
                        "comprehend:DetectDominantLanguage",
                    ],
                    resources=["*"],
                )
            ],
        )
        acknowledge(
            detect,
            "AwsSolutions-IAM5[Resource::*]",
            "Comprehend's real-time Detect* APIs on built-in models support no resource-level permissions.",
        )
        if classifier_endpoint_arn:
            role.add_to_principal_policy(
                iam.PolicyStatement(sid="ClassifyWithEndpoint", actions=["comprehend:ClassifyDocument"], resources=[classifier_endpoint_arn])
            )
