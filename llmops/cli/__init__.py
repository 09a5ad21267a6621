"""The ``llmops`` command line.

Each command group lives in its own module and imports its runtime dependencies lazily, so
``llmops --help`` stays fast and synth-time code never loads torch or LangChain.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add subcommands: each exposes ``register(subparsers)`` for its group.
# Groups: "local" (runs RAG and data prep on this machine), "prompts" (prompt catalog authoring);
# "monitor" (metrics, baselines, drift, retraining approval) is made by whichever of its modules comes first.
COMMAND_MODULES = (
    "llmops.cli.platform",
    "llmops.cli.pipelines",
    "llmops.cli.cost",
    "llmops.cli.delivery",
    "llmops.cli.review",
    "llmops.cli.experiments",
    "llmops.cli.monitor_retraining",
    "llmops.cli.models",
    "llmops.cli.inference",
)
OPTIONAL_COMMAND_MODULES = (
    "llmops.cli.local_rag",
    "llmops.cli.local_prep",
    "llmops.cli.local_serve",
    "llmops.cli.prompts",
    "llmops.cli.monitor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="LLMOps platform tools")
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    local = groups.add_parser("local", help="run RAG and data preparation on this machine, no AWS account")
    local_sub = local.add_subparsers(dest="command", metavar="COMMAND", required=True)
    prompts = groups.add_parser("prompts", help="validate and render prompt catalog files offline")
    prompts_sub = prompts.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registry = {"root": groups, "local": local_sub, "prompts": prompts_sub}
    for name in COMMAND_MODULES + OPTIONAL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name and name in OPTIONAL_COMMAND_MODULES:
                continue  # that capability's CLI is not installed in this checkout
            raise
        module.register(registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
