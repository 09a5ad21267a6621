"""Drift alarm -> retraining decision: throttled per use case, optionally held for a person, always recorded.

A drift alarm entering ALARM asks for a fine-tuning run of its use case. At most one run starts
per ``cooldown``: the throttle is one conditional write to the decisions table, so two alarms at
once cannot both start a run. With approval required, the decision waits (``pending-approval``)
and an SNS message carries the drift report and the command that approves it. Every decision,
started, throttled, pending or ignored, is an item in the table.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"


class RetrainingEventError(ValueError):
    """The event is not a drift alarm this loop handles; the message says why."""


@dataclass(frozen=True)
class DriftAlarm:
    alarm_name: str
    use_case: str
    metric: str
    reason: str
    timestamp: str


@dataclass(frozen=True)
class Settings:
    table: str
    pipelines: Mapping[str, str]  # use case -> pipeline name
    alarm_prefix: str  # "<name_prefix>-drift-"
    cooldown: _dt.timedelta
    require_approval: bool
    topic_arn: str | None = None
    environment: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        return cls(
            table=environ["DECISIONS_TABLE"],
            pipelines=json.loads(environ["PIPELINES"]),
            alarm_prefix=environ["ALARM_PREFIX"],
            cooldown=_dt.timedelta(hours=float(environ["COOLDOWN_HOURS"])),
            require_approval=environ.get("REQUIRE_APPROVAL", "true") == "true",
            topic_arn=environ.get("TOPIC_ARN") or None,
            environment=environ.get("PLATFORM_ENVIRONMENT_NAME", ""),
        )


def parse_alarm(event: Mapping[str, Any], settings: Settings) -> DriftAlarm | None:
    """The drift alarm in ``event``; None for a state change this loop ignores (OK, INSUFFICIENT_DATA)."""
    if event.get("detail-type") != ALARM_DETAIL_TYPE:
        raise RetrainingEventError(f"detail-type: expected {ALARM_DETAIL_TYPE!r}, got {event.get('detail-type')!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise RetrainingEventError("detail: missing")
    name = detail.get("alarmName")
    state = (detail.get("state") or {}).get("value")
    if not isinstance(name, str) or not name.startswith(settings.alarm_prefix):
        raise RetrainingEventError(f"alarmName: {name!r} is not a drift alarm ({settings.alarm_prefix}<use case>-<metric>)")
    if state != "ALARM":
        return None
    rest = name.removeprefix(settings.alarm_prefix)
    use_case = next((u for u in sorted(settings.pipelines, key=len, reverse=True) if rest.startswith(u + "-")), None)
    if use_case is None:
        raise RetrainingEventError(f"alarmName: {name!r} names no use case; known: {', '.join(settings.pipelines)}")
    return DriftAlarm(name, use_case, rest.removeprefix(use_case + "-"), str((detail.get("state") or {}).get("reason", "")),
                      str((detail.get("state") or {}).get("timestamp", "")))


def _iso(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _claim(dynamodb: Any, settings: Settings, use_case: str, decision_id: str, now: _dt.datetime) -> bool:
    """Take the use case's run slot unless a run started within the cooldown (one conditional write)."""
    try:
        dynamodb.update_item(
            TableName=settings.table,
            Key={"pk": {"S": f"use-case#{use_case}"}, "sk": {"S": "slot"}},
            UpdateExpression="SET last_started_at = :now, last_decision = :id",
            ConditionExpression="attribute_not_exists(last_started_at) OR last_started_at < :cutoff",
            ExpressionAttributeValues={":now": {"S": _iso(now)}, ":id": {"S": decision_id},
                                       ":cutoff": {"S": _iso(now - settings.cooldown)}},
        )
        return True
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def _record(dynamodb: Any, settings: Settings, use_case: str, decision_id: str, status: str, now: _dt.datetime,
            **fields: str) -> None:
    item = {"pk": {"S": f"use-case#{use_case}"}, "sk": {"S": f"decision#{_iso(now)}#{decision_id}"},
            "decision_id": {"S": decision_id}, "status": {"S": status}, "decided_at": {"S": _iso(now)}}
    item.update({k: {"S": v} for k, v in fields.items() if v})
    dynamodb.put_item(TableName=settings.table, Item=item)


def _start(sagemaker: Any, pipeline: str, decision_id: str, reason: str) -> str:
    response = sagemaker.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=f"drift-{decision_id[:20]}",
        PipelineExecutionDescription=reason[:3000],
        ClientRequestToken=decision_id[:64],  # a redelivered event starts no second run
    )
    return response["PipelineExecutionArn"]


def decide(alarm: DriftAlarm, settings: Settings, *, dynamodb: Any, sagemaker: Any, sns: Any = None,
           now: _dt.datetime | None = None) -> dict[str, str]:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    decision_id = hashlib.sha256(f"{alarm.alarm_name}|{alarm.timestamp}".encode()).hexdigest()[:32]
    reason = f"drift alarm {alarm.alarm_name} ({alarm.metric}): {alarm.reason}"
    pipeline = settings.pipelines[alarm.use_case]
    if settings.require_approval:
        _record(dynamodb, settings, alarm.use_case, decision_id, "pending-approval", now, alarm=alarm.alarm_name, reason=reason)
        if sns is not None and settings.topic_arn:
            sns.publish(
                TopicArn=settings.topic_arn,
                Subject=f"Retrain {alarm.use_case}? Drift in {alarm.metric}"[:100],
                Message=(f"{reason}\n\nA fine-tuning run of {pipeline} waits for approval. To start it:\n"
                         f"  llmops monitor approve-retraining --env {settings.environment} --use-case {alarm.use_case} "
                         f"--decision {decision_id}\nRuns are limited to one per {settings.cooldown}."),
            )
        return {"decision": decision_id, "status": "pending-approval", "use_case": alarm.use_case}
    return approve(alarm.use_case, decision_id, settings, dynamodb=dynamodb, sagemaker=sagemaker, reason=reason,
                   approved_by="automatic", now=now)


def approve(use_case: str, decision_id: str, settings: Settings, *, dynamodb: Any, sagemaker: Any, reason: str,
            approved_by: str, now: _dt.datetime | None = None) -> dict[str, str]:
    """Start the run if the cooldown allows it; record what happened either way."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if use_case not in settings.pipelines:
        raise RetrainingEventError(f"use case {use_case!r}: no pipeline; known: {', '.join(settings.pipelines)}")
    if not _claim(dynamodb, settings, use_case, decision_id, now):
        _record(dynamodb, settings, use_case, decision_id, "throttled", now, reason=reason, approved_by=approved_by)
        return {"decision": decision_id, "status": "throttled", "use_case": use_case}
    arn = _start(sagemaker, settings.pipelines[use_case], decision_id, reason)
    _record(dynamodb, settings, use_case, decision_id, "started", now, reason=reason, approved_by=approved_by, execution=arn)
    return {"decision": decision_id, "status": "started", "use_case": use_case, "execution": arn}
