"""``llmops models import SOURCE``: copy a Hub or local model into the artifacts bucket (base-models/).

Runs on the user's machine with their network and Hugging Face token (``HF_TOKEN`` or
``huggingface-cli login``); endpoints and training then read the copy and need neither.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(registry: dict) -> None:
    group = registry["root"].add_parser("models", help="base models in the artifacts bucket")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    imp = sub.add_parser("import", help="copy a Hugging Face Hub model or a local folder to s3://<artifacts>/base-models/<id>/<revision>/")
    imp.add_argument("source", help="a Hub repo id (org/name) or a local model folder")
    imp.add_argument("--model-id", help="id under base-models/ (default: the repo id; required for a folder)")
    imp.add_argument("--revision", help="Hub branch/tag/commit and the S3 folder name (default: main; 'local' for a folder)")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--bucket", help="the artifacts bucket name")
    where.add_argument("--env", help="environment whose artifacts bucket to use (<prefix>-artifacts-<account>-<region>)")
    imp.add_argument("--config", default=None, help="config file (default config/environments.yaml)")
    imp.add_argument("--token-env", default="HF_TOKEN", help="environment variable holding the Hub token (never a flag)")
    imp.add_argument("--offline", action="store_true", help="use the local Hugging Face cache only (no download)")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    imp.set_defaults(func=run_import)


def artifacts_bucket(env_name: str, config_path: str | None, sts=None) -> tuple[str, str | None]:
    """``<name_prefix>-artifacts-<account>-<region>`` of an environment (account from config, else STS)."""
    from llmops.config import load_config

    env = load_config(config_path).get(env_name)
    account, region = env.account, env.region
    if not account:
        import boto3

        account = (sts or boto3.client("sts")).get_caller_identity()["Account"]
    if not region:
        import boto3

        region = boto3.session.Session().region_name
        if not region:
            raise ValueError(f"environments.{env_name}.region is not set and no AWS region is configured (AWS_REGION)")
    return f"{env.name_prefix}-artifacts-{account}-{region}", region


def _bar(total: int):
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="upload", file=sys.stderr)


def run_import(args: argparse.Namespace) -> int:
    import boto3

    from lambdas.runtime.inference.model_import import ModelImportError, import_model
    from llmops.config import ConfigError

    try:
        region = None
        bucket = args.bucket
        if bucket is None:
            bucket, region = artifacts_bucket(args.env, args.config)
        s3 = boto3.client("s3", region_name=region) if region else boto3.client("s3")
        result = import_model(
            args.source, s3=s3, bucket=bucket, model_id=args.model_id, revision=args.revision,
            token=os.environ.get(args.token_env) or None, local_files_only=args.offline,
            progress=None if args.no_progress else _bar,
        )
    except (ModelImportError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=1))
    return 0
