"""``llmops inference start|stop ENV``: run an endpoint's stop/start schedule now (before a deploy, after hours)."""

from __future__ import annotations

import sys


def register(registry: dict) -> None:
    group = registry["root"].add_parser("inference", help="endpoints on a stop/start schedule")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_ in (("start", "create the scheduled endpoints that are stopped, as their start schedule would"),
                        ("stop", "delete the scheduled endpoints, as their stop schedule would")):
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument("env", help="environment name in the config")
        cmd.add_argument("--config", default=None, help="config file (default config/environments.yaml)")
        cmd.add_argument("--region", default=None, help="default: the environment's region")
        if name == "start":
            cmd.add_argument("--wait", action="store_true", help="wait until every endpoint is InService (up to 1 h)")
        cmd.set_defaults(func=run)


def scheduled_endpoints(env) -> list[str]:
    inf = env.inference
    names = [f"{env.name_prefix}-{inf.llm.name}"] if inf.llm.schedule.enabled else []
    if inf.embeddings.enabled and inf.embeddings.schedule.enabled:
        names.append(f"{env.name_prefix}-{inf.embeddings.name}")
    return names


def run(args, *, session=None) -> int:
    from lambdas.runtime.inference.endpoint_schedule import ScheduleError, start_endpoint, stop_endpoint
    from llmops.config import ConfigError, load_config

    try:
        env = load_config(args.config).get(args.env)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    endpoints = scheduled_endpoints(env)
    if not endpoints:
        print(f"error: environments.{env.name}.inference: no endpoint has schedule.enabled", file=sys.stderr)
        return 2
    if session is None:
        import boto3

        session = boto3.Session(region_name=args.region or env.region)
    sagemaker, scheduler = session.client("sagemaker"), session.client("scheduler")
    try:
        for endpoint in endpoints:
            if args.command == "start":
                print(start_endpoint(sagemaker, scheduler, endpoint, wait=args.wait))
            else:
                print(stop_endpoint(sagemaker, scheduler, endpoint))
    except ScheduleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
