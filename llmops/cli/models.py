"""``llmops models import MODEL_ID``: copy a base model into the artifacts bucket's ``base-models/``.

From the Hugging Face Hub (this machine's network and token: ``HF_TOKEN`` or ``--token-file``) or
from a local folder (``--from-folder``). Runs with the caller's AWS credentials; the bucket is the
environment's artifacts bucket (``<name_prefix>-artifacts-<account>-<region>``) unless ``--bucket``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def register(registry: dict) -> None:
    group = registry["root"].add_parser("models", help="import base models into the artifacts bucket")
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cmd = sub.add_parser("import", help="copy a Hub model or a local folder to s3://<artifacts>/base-models/<id>/<revision>/")
    cmd.add_argument("model_id", help="Hugging Face model id, e.g. meta-llama/Llama-3.2-1B-Instruct")
    cmd.add_argument("--revision", default="main", help="branch, tag or commit (default main)")
    cmd.add_argument("--from-folder", type=Path, help="upload this local folder instead of downloading from the Hub")
    cmd.add_argument("--env", default="dev", help="environment whose artifacts bucket receives the model (default dev)")
    cmd.add_argument("--bucket", help="bucket name (default: the environment's artifacts bucket)")
    cmd.add_argument("--region", help="AWS region (default: the environment's, else the AWS profile's)")
    cmd.add_argument("--token-file", type=Path, help="file holding a Hugging Face token (default: HF_TOKEN)")
    cmd.set_defaults(func=run_import)


def _bucket(args: argparse.Namespace, session) -> str:
    if args.bucket:
        return args.bucket
    from llmops.config import load_config

    env = load_config().get(args.env)
    account = session.client("sts").get_caller_identity()["Account"]
    return f"{env.name_prefix}-artifacts-{account}-{session.region_name}"


def run_import(args: argparse.Namespace) -> int:
    import boto3
    from tqdm import tqdm

    from lambdas.runtime.inference.model_import import ModelImportError, download_from_hub, import_folder, prefix_for

    try:
        prefix_for(args.model_id, args.revision)
        region = args.region
        if not region and not args.bucket:
            from llmops.config import load_config

            region = load_config().get(args.env).region
        session = boto3.Session(region_name=region) if region else boto3.Session()
        bucket = _bucket(args, session)
        with tempfile.TemporaryDirectory(prefix="llmops-model-") as tmp:
            folder = args.from_folder
            if folder is None:
                token = args.token_file.read_text().strip() if args.token_file else os.environ.get("HF_TOKEN")
                folder = download_from_hub(args.model_id, args.revision, Path(tmp) / "snapshot", token=token)
            total = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
            with tqdm(total=total, unit="B", unit_scale=True, desc=args.model_id) as bar:
                manifest = import_folder(session.client("s3"), bucket, args.model_id, args.revision, Path(folder),
                                         progress=bar.update)
    except ModelImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"s3://{bucket}/{manifest.prefix}: {len(manifest.uploaded)} uploaded, {len(manifest.skipped)} unchanged; "
          f"{manifest.parameters or '?'} parameters, dtype {manifest.dtype or '?'}")
    return 0
