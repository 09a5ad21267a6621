"""Small I/O helpers shared by the step scripts: S3-or-local reads and the job failure message."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# SageMaker copies these files into the job's ExitMessage (processing) and FailureReason (training),
# so the pipeline execution shows our sentence instead of "AlgorithmError: exit code 1".
FAILURE_FILES = ("/opt/ml/output/message", "/opt/ml/output/failure")


class StepFailed(Exception):
    """A step cannot continue; the message is what the pipeline execution reports."""


def report_failure(message: str, failure_files: tuple[str, ...] = FAILURE_FILES) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    for path in failure_files:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(message[:1000], encoding="utf-8")
        except OSError:
            pass  # not in a SageMaker container (local run): stderr is enough


def run_step(main, argv: list[str] | None = None) -> int:
    """Run a step's ``main``; a StepFailed becomes exit code 2 plus the failure message files."""
    try:
        main(argv)
    except StepFailed as exc:
        report_failure(str(exc))
        return 2
    return 0


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class Location:
    """A folder that is either local (tests, /opt/ml paths) or an S3 prefix."""

    def __init__(self, uri: str, s3_client: Any | None = None) -> None:
        self.uri = uri.rstrip("/") + "/"
        self.is_s3 = uri.startswith("s3://")
        self._s3 = s3_client
        if self.is_s3 and self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name`` in this folder, or None when it does not exist."""
        if not self.is_s3:
            path = Path(self.uri) / name
            return path.read_bytes() if path.is_file() else None
        from botocore.exceptions import ClientError

        bucket, prefix = split_s3_uri(self.uri)
        try:
            return self._s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def list_names(self) -> list[str]:
        """Names directly under this folder (files and sub-folders without the trailing '/')."""
        if not self.is_s3:
            path = Path(self.uri)
            return sorted(p.name for p in path.iterdir()) if path.is_dir() else []
        bucket, prefix = split_s3_uri(self.uri)
        names: set[str] = set()
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            names.update(c["Prefix"][len(prefix):].rstrip("/") for c in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(prefix):] for o in page.get("Contents", []))
        return sorted(n for n in names if n)

    def parent(self) -> "Location":
        trimmed = self.uri.rstrip("/")
        return Location(trimmed[: trimmed.rfind("/") + 1], self._s3)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def env_flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes")
