"""`llmops prompts validate|render`: check and try prompt files before a pipeline run.

``validate`` works offline on ``prompts/*.yaml`` (or PATH) and prints one line per problem,
``<file>: <field>: <message>``. ``render`` renders a prompt file locally; with ``--table`` it
renders from a deployed catalog instead, by ``--alias`` (default ``prod``) or ``--version``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_DIR = "prompts"


def register(registry: dict) -> None:
    sub = registry["prompts"]
    validate = sub.add_parser("validate", help="check prompt files offline: parse, variables, examples")
    validate.add_argument("path", nargs="?", default=DEFAULT_DIR, help="a prompt file or a folder of them (default: prompts/)")
    validate.set_defaults(func=run_validate)

    render = sub.add_parser("render", help="render a prompt with variables (locally, or from a deployed catalog with --table)")
    render.add_argument("prompt_id", metavar="ID")
    render.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a variable; repeat for each (@file reads VALUE from a file)")
    which = render.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="catalog version to render (needs --table)")
    which.add_argument("--alias", help="catalog alias to render (needs --table; default prod)")
    render.add_argument("--path", default=DEFAULT_DIR, help="folder of prompt files for a local render (default: prompts/)")
    render.add_argument("--table", default=os.environ.get("PROMPT_TABLE_NAME"), help="catalog table name (default: $PROMPT_TABLE_NAME)")
    render.add_argument("--json", action="store_true", help="print the whole render result (version, hash, parameters) as JSON")
    render.set_defaults(func=run_render)


def run_validate(args: argparse.Namespace) -> int:
    from lambdas.runtime.prompt_catalog.files import load_prompt_dir, prompt_paths

    root = Path(args.path)
    if root.is_dir() and not prompt_paths(root):
        print(f"{root}: no prompt files (*.yaml, *.yml)", file=sys.stderr)
        return 1
    result = load_prompt_dir(root)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.problems:
        print(f"{len(result.problems)} problem(s) in {root}", file=sys.stderr)
        return 1
    print(f"{len(result.files)} prompt file(s) OK: {', '.join(f.prompt_id for f in result.files)}")
    return 0


def _raw_variables(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--var: expected NAME=VALUE, got {pair!r}")
        if value.startswith("@"):
            value = Path(value[1:]).read_text(encoding="utf-8")
        values[name] = value
    return values


def run_render(args: argparse.Namespace) -> int:
    from lambdas.runtime.prompt_catalog.errors import PromptCatalogError
    from lambdas.runtime.prompt_catalog.templates import coerce_variable

    try:
        raw = _raw_variables(args.var)
        if args.table:
            rendered = _render_from_catalog(args, raw, coerce_variable)
        else:
            if args.version is not None or args.alias is not None:
                raise ValueError("--version/--alias select a catalog version: give --table (or set PROMPT_TABLE_NAME)")
            rendered = _render_local(args, raw, coerce_variable)
    except (PromptCatalogError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(rendered.to_dict(), indent=2, ensure_ascii=False) if args.json else rendered.text)
    return 0


def _render_local(args, raw: dict[str, str], coerce):
    from lambdas.runtime.prompt_catalog.files import load_prompt_dir
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt
    from lambdas.runtime.prompt_catalog.templates import render_content

    loaded = load_prompt_dir(args.path)
    match = next((f for f in loaded.files if f.prompt_id == args.prompt_id), None)
    if match is None:
        problems = [str(p) for p in loaded.problems if Path(p.path).stem == args.prompt_id]
        detail = "; ".join(problems) if problems else f"no prompt file with id {args.prompt_id!r} in {args.path}"
        raise ValueError(detail)
    content = match.content
    variables = {name: coerce(content, name, value) for name, value in raw.items()}
    text, messages = render_content(content, variables)
    # A local file has no catalog version yet: version 0, with the hash the catalog would store.
    return RenderedPrompt(text=text, prompt_id=match.prompt_id, version=0, content_hash=content.content_hash(),
                          model_parameters=content.model_parameters.as_dict(), messages=messages)


def _render_from_catalog(args, raw: dict[str, str], coerce):
    import dataclasses

    from lambdas.runtime.prompt_catalog.client import PromptCatalogClient

    client = PromptCatalogClient(args.table)
    alias = None if args.version is not None else (args.alias or "prod")
    version = args.version if alias is None else client.choose_version(client.store.resolve_alias(args.prompt_id, alias))
    # Command-line values are strings: the version's declared types say how to read them.
    content = client.store.get_version(args.prompt_id, version).content
    variables = {name: coerce(content, name, value) for name, value in raw.items()}
    return dataclasses.replace(client.render_version(args.prompt_id, version, variables), alias=alias)
