"""``llmops monitor approve-retraining``: start a fine-tuning run a drift alarm asked for (needs AWS credentials)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys


def _group(registry: dict):
    if "monitor" not in registry:
        group = registry["root"].add_parser("monitor", help="LLM and RAG metrics, baselines, drift, retraining")
        registry["monitor"] = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return registry["monitor"]


def register(registry: dict) -> None:
    approve = _group(registry).add_parser("approve-retraining", help="approve a retraining decision held for a person")
    approve.add_argument("--env", required=True)
    approve.add_argument("--use-case", required=True)
    approve.add_argument("--decision", required=True, help="the decision id from the drift alert")
    approve.set_defaults(func=run_approve)


def run_approve(args: argparse.Namespace) -> int:
    import datetime as dt

    import boto3

    from lambdas.runtime.monitoring.retraining import RetrainingEventError, Settings, approve
    from llmops.config import ConfigError, load_config
    from pipelines import profiles

    try:
        env = load_config().get(args.env)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    session = boto3.Session(region_name=env.region)
    settings = Settings(
        table=f"{env.name_prefix}-retraining-decisions",
        pipelines={u: profiles.pipeline_name(env, u) for u in env.fine_tuning.use_cases},
        alarm_prefix=f"{env.name_prefix}-drift-", cooldown=dt.timedelta(hours=env.monitoring.retraining.cooldown_hours),
        require_approval=True, environment=env.name,
    )
    try:
        result = approve(args.use_case, args.decision, settings, dynamodb=session.client("dynamodb"),
                         sagemaker=session.client("sagemaker"), reason=f"approved decision {args.decision}",
                         approved_by=getpass.getuser())
    except RetrainingEventError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0 if result["status"] == "started" else 1
