"""``llmops pipelines build [--env NAME] [--check]``: compile the fine-tuning pipeline definitions.

The builder (``pipelines/build.py``, SageMaker SDK 3, offline) never imports ``llmops``: this
command reads the config and hands each environment to it.
"""

from __future__ import annotations

import argparse
import sys


def register(registry: dict) -> None:
    group = registry["root"].add_parser("pipelines", help="compile the fine-tuning pipeline definitions (SageMaker SDK)")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    build = sub.add_parser("build", help="write pipelines/definitions/<env>.json (needs the pipeline-build extra)")
    build.add_argument("--env", action="append", help="environment(s) to build (default: all)")
    build.add_argument("--check", action="store_true", help="fail if a committed definition differs")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from llmops.config import ConfigError, load_config
    from pipelines.build import DEFINITIONS_DIR, build_definitions, render
    from pipelines.profiles import ProfileError

    config = load_config()
    stale = []
    for name in args.env or list(config.environments):
        try:
            text = render(build_definitions(config.get(name)))
        except (ConfigError, ProfileError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        path = DEFINITIONS_DIR / f"{name}.json"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        DEFINITIONS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("stale definitions (run `llmops pipelines build`):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0
