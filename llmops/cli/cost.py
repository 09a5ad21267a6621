"""``llmops cost [ENV ...] [--json] [--cdk-out DIR]``: itemised cost estimate of each environment."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LABELS = {
    "idle_per_day": "idle, per day",
    "per_1000_queries": "per 1,000 RAG queries",
    "per_1000_pages": "per 1,000 ingested pages",
    "per_training_run": "per training run (at max runtime)",
}


def register(registry: dict) -> None:
    parser = registry["root"].add_parser("cost", help="itemised cost estimate of each environment (offline)")
    parser.add_argument("env", nargs="*", help="environment(s) (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON document with every line")
    parser.add_argument("--cdk-out", default="cdk.out", help="synthesized templates to count alarms, keys... (if present)")
    parser.add_argument("--config", default=None, help="config file (default config/environments.yaml)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmops.config import ConfigError, load_config
    from llmops.cost import CATEGORIES, estimate

    try:
        config = load_config(args.config)
        names = args.env or list(config.environments)
        envs = [config.get(n) for n in names]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cdk_out = Path(args.cdk_out)
    cdk_out = cdk_out if cdk_out.is_dir() else None
    estimates = [estimate(env, cdk_out=cdk_out) for env in envs]
    if args.json:
        print(json.dumps({"environments": [e.to_dict() for e in estimates]}, indent=1))
        return 0
    for est in estimates:
        print(f"== {est.environment} ({est.region})" + ("" if cdk_out else "  [no cdk.out: alarms/dashboards not counted]"))
        for category in CATEGORIES:
            lines = [l for l in est.lines if l.category == category]
            print(f"  {LABELS[category]}: ${est.total(category):,.2f}")
            for l in lines:
                print(f"    {l.item:<58} {l.quantity:>12,.4g} {l.unit:<16} x ${l.unit_price:<10g} = ${l.cost:>9,.4f}"
                      f"   [{l.quantity_from}]")
        for warning in est.warnings:
            print(f"  warning: {warning}")
    return 0
