"""``llmops experiments judge NAME --local`` and ``llmops experiments promote NAME``.

The judge reads interaction records (the local ``ask`` log, or any JSONL of the monitoring
record format), splits them into the experiment's arms by their metadata, compares the arms on
the experiment's metrics and prints the verdict; every judgement is logged to MLflow. Promote
writes the winner into ``config/environments.yaml`` (comments and order kept) for a person to
review and commit: nothing changes an endpoint or an alias behind CloudFormation's back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ARM_KEYS = {"prompt-ab": ("prompt_version", "version"), "model-ab": ("variant", "variant"),
            "model-shadow": ("variant", "variant"), "embedding-ab": ("embedding_model", "model")}


def register(registry: dict) -> None:
    group = registry["root"].add_parser("experiments", help="judge A/B and shadow experiments, promote the winner")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    judge = sub.add_parser("judge", help="compare the arms of an experiment with a significance test")
    judge.add_argument("name")
    judge.add_argument("--env", default="dev")
    judge.add_argument("--local", action="store_true", help="judge the local interaction log (llmops local ask)")
    judge.add_argument("--records", help="a JSONL file of interaction records (default with --local: the state folder's log)")
    judge.add_argument("--json", action="store_true")
    judge.add_argument("--html", help="write an HTML report with a plot per metric")
    judge.add_argument("--require-decision", action="store_true", help="exit 1 unless a winner or no-difference is decided")
    judge.add_argument("--no-mlflow", action="store_true", help="do not log the judgement to MLflow")
    judge.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite in the state folder)")
    judge.set_defaults(func=run_judge)
    promote = sub.add_parser("promote", help="write the winner into the config for review")
    promote.add_argument("name")
    promote.add_argument("--env", default="dev")
    promote.add_argument("--winner", required=True, help="the arm that won (from the judge's verdict)")
    promote.add_argument("--config", default=None, help="config file (default config/environments.yaml)")
    promote.set_defaults(func=run_promote)
    backfill = sub.add_parser("backfill", help="queue every current document for ingestion, to fill a new embedding arm's index")
    backfill.add_argument("name", help="the embedding-ab experiment")
    backfill.add_argument("--env", default="dev")
    backfill.add_argument("--bucket", required=True, help="the platform data bucket (the foundation stack's output)")
    backfill.add_argument("--queue-url", required=True, help="the RAG ingestion queue (RagStack IngestQueue)")
    backfill.set_defaults(func=run_backfill)


def _load_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    records, problems = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [f"{path}: not UTF-8 ({exc})"]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{path}:{number}: not a JSON object")
            continue
        records.append(record)
    return records, problems


def _with_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """Records from the local log carry metadata; score the missing metrics with the monitoring library."""
    metrics = dict(record.get("metrics") or {})
    meta = record.get("metadata") or {}
    if "latency_ms" not in metrics and isinstance(meta.get("latency_ms"), (int, float)):
        metrics["latency_ms"] = float(meta["latency_ms"])
    try:
        from lambdas.runtime.monitoring import score_record  # the monitoring capability's library
    except ImportError:
        score_record = None
    if score_record is not None and "prompt" in record and "response" in record:
        try:
            metrics = {**score_record(record), **metrics}
        except (ValueError, TypeError):
            pass  # an unscorable record keeps what it has; the judge counts values per metric
    return {**record, "metrics": metrics}


def run_judge(args: argparse.Namespace) -> int:
    from llmops.cli.local_files import state_home
    from llmops.config import ConfigError, load_config
    from lambdas.runtime.experiments.judge import judge, verdict_json

    try:
        env = load_config().get(args.env)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.name not in env.experiments:
        print(f"error: environments.{env.name}.experiments: no experiment {args.name!r}; "
              f"declared: {', '.join(env.experiments) or 'none'}", file=sys.stderr)
        return 2
    if not (args.local or args.records):
        print("error: give --local (the local interaction log) or --records FILE.jsonl; the AWS judge runs as a job", file=sys.stderr)
        return 2
    exp = env.experiments[args.name]
    path = Path(args.records) if args.records else state_home() / "interactions.jsonl"
    if not path.is_file():
        print(f"error: {path}: no interaction records (run `llmops local ask` or pass --records)", file=sys.stderr)
        return 2
    records, problems = _load_records(path)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    meta_key, arm_field = ARM_KEYS[exp.kind]
    by_value = {str(getattr(arm, arm_field)): arm.name for arm in exp.arms}
    arms: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in exp.arms}
    for record in records:
        value = (record.get("metadata") or {}).get(meta_key)
        if value is not None and str(value) in by_value:
            arms[by_value[str(value)]].append(_with_metrics(record))
    exp_name = args.name
    verdict = judge(exp_name, arms, list(exp.metrics), control=exp.arms[0].name,
                    min_samples=exp.min_samples, alpha=exp.alpha)
    if problems:
        verdict.notes.append(f"{len(problems)} malformed record line(s) skipped")
    report = None
    if args.html:
        from lambdas.runtime.experiments.report import render_report

        report = render_report(verdict, arms, list(exp.metrics))
        Path(args.html).write_text(report, encoding="utf-8")
    if not args.no_mlflow:
        from lambdas.runtime.experiments.tracking import log_verdict

        uri = args.tracking_uri or f"sqlite:///{state_home() / 'mlflow.db'}"
        state_home().mkdir(parents=True, exist_ok=True)
        arm_specs = {a.name: {"weight": a.weight, "variant": a.variant, "version": a.version, "model": a.model} for a in exp.arms}
        run_id = log_verdict(verdict, tracking_uri=uri, arms=arm_specs, report_html=report, experiment_name=f"{env.name}-{exp_name}")
        verdict.notes.append(f"MLflow run {run_id} at {uri}")
    print(verdict_json(verdict) if args.json else verdict.summary())
    if args.require_decision and verdict.status not in ("winner", "no-difference"):
        return 1
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from ruamel.yaml import YAML

    from llmops.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config

    path = Path(args.config) if args.config else DEFAULT_CONFIG_PATH
    yaml = YAML()  # round-trip: comments, key order and quoting survive the edit
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the file's own style, so the diff is the promotion only
    yaml.width = 4096
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    data = yaml.load(path.read_text(encoding="utf-8"))
    env = (data.get("environments") or {}).get(args.env)
    experiments = (env or {}).get("experiments") or {}
    if args.name not in experiments:
        print(f"error: environments.{args.env}.experiments.{args.name}: not declared in {path}", file=sys.stderr)
        return 2
    exp = experiments[args.name]
    names = [arm["name"] for arm in exp["arms"]]
    if args.winner not in names:
        print(f"error: --winner {args.winner!r} is not an arm of {args.name}; arms: {', '.join(names)}", file=sys.stderr)
        return 2
    exp["winner"] = args.winner
    if exp.get("kind") != "model-shadow":
        for arm in exp["arms"]:
            arm["weight"] = 100 if arm["name"] == args.winner else 0  # the next deploy gives the winner all traffic
    import io

    buffer = io.StringIO()
    yaml.dump(data, buffer)
    try:
        parse_config(YAML(typ="safe").load(buffer.getvalue()))
    except ConfigError as err:
        print(f"error: the promoted config would not validate: {err}", file=sys.stderr)
        return 1
    path.write_text(buffer.getvalue(), encoding="utf-8")
    print(f"{path}: environments.{args.env}.experiments.{args.name}: winner {args.winner}; review the diff and commit it")
    return 0


def run_backfill(args: argparse.Namespace) -> int:
    """Ingestion then writes each document into the arms' indexes that lack it; the others skip it as unchanged."""
    from llmops.config import ConfigError, load_config

    try:
        env = load_config().get(args.env)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    exp = env.experiments.get(args.name)
    if exp is None or exp.kind != "embedding-ab":
        declared = [n for n, e in env.experiments.items() if e.kind == "embedding-ab"]
        print(f"error: environments.{env.name}.experiments.{args.name}: not an embedding-ab experiment; "
              f"declared: {', '.join(declared) or 'none'}", file=sys.stderr)
        return 2
    if exp.winner is not None:
        print(f"error: experiments.{args.name} is promoted ({exp.winner}): ingestion writes one index, nothing to fill",
              file=sys.stderr)
        return 2
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdas.runtime.rag.backfill import queue_backfill

    try:
        sent = queue_backfill(boto3.client("s3"), boto3.client("sqs"), bucket=args.bucket, queue_url=args.queue_url)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        print(f"error: backfill stopped: {exc}", file=sys.stderr)
        return 1
    print(f"{sent} document(s) queued for ingestion into every arm of {args.name}")
    return 0
