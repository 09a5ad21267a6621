"""Platform-level commands: `llmops report` (synth summary) and `llmops bundles` (bundle check)."""

from __future__ import annotations

import argparse


def register(registry: dict) -> None:
    root = registry["root"]
    report = root.add_parser("report", help="summarize a synthesized cloud assembly: stacks, resources, findings")
    report.add_argument("--cdk-out", default="cdk.out")
    report.add_argument("--no-lint", action="store_true", help="skip cfn-lint")
    report.set_defaults(func=_report)
    bundles = root.add_parser("bundles", help="build every Lambda bundle for real and print its unzipped size")
    bundles.add_argument("--out", default=None, help="folder for the bundles (default .build/bundles)")
    bundles.add_argument("--max-mb", type=float, default=250.0, help="fail when a bundle is larger (Lambda's limit: 250)")
    bundles.set_defaults(func=_bundles)


def _report(args: argparse.Namespace) -> int:
    from llmops.report import main

    return main(args.cdk_out, lint=not args.no_lint)


def _bundles(args: argparse.Namespace) -> int:
    from llmops.bundles import main

    return main(args.out, max_mb=args.max_mb)
