"""Copy a model (Hugging Face Hub snapshot or local folder) to ``s3://<artifacts>/base-models/<id>/<revision>/``.

Endpoints and training read base models from there, so neither needs a Hugging Face token or the
internet. Each file is uploaded with its sha256 in the object metadata: a rerun skips every file
whose object already carries the same digest (idempotent), and an interrupted run resumes at the
files that are missing (S3 writes an object all at once or not at all). The manifest
(``llmops-manifest.json``: files, sizes, sha256, parameter count, dtype) is written last, so its
presence means the import finished.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

BASE_MODELS_PREFIX = "base-models/"
MANIFEST = "llmops-manifest.json"
DIGEST_KEY = "sha256"  # x-amz-meta-sha256
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Files a serving or training container never reads.
_SKIP = (".git/", ".cache/", ".gitattributes")
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "F8_E4M3": 1, "F8_E5M2": 1, "BOOL": 1}


class ModelImportError(ValueError):
    """The model id, revision or folder cannot be imported; the message says why."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    model_id: str
    revision: str
    prefix: str
    files: list[FileEntry]
    parameters: int | None
    dtype: str | None
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        body = asdict(self)
        body.pop("uploaded"), body.pop("skipped")  # per-run facts, not the model's
        return json.dumps(body, indent=1, sort_keys=True)


def prefix_for(model_id: str, revision: str) -> str:
    if not _MODEL_ID.match(model_id):
        raise ModelImportError(f"model id {model_id!r} must look like 'org/name' (letters, digits, '.', '_', '-')")
    if not _REVISION.match(revision):
        raise ModelImportError(f"revision {revision!r} must be a branch, tag or commit (letters, digits, '.', '_', '-')")
    return f"{BASE_MODELS_PREFIX}{model_id}/{revision}/"


def sha256_of(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def scan(folder: Path) -> list[FileEntry]:
    """Every file under ``folder`` (sorted, POSIX paths), with size and sha256."""
    if not folder.is_dir():
        raise ModelImportError(f"model folder {folder} does not exist or is not a directory")
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(_SKIP) or rel == MANIFEST:
            continue
        entries.append(FileEntry(rel, path.stat().st_size, sha256_of(path)))
    if not any(e.path == "config.json" for e in entries):
        raise ModelImportError(f"{folder} has no config.json: not a Hugging Face model folder")
    return entries


def safetensors_parameters(path: Path) -> tuple[int, str | None]:
    """Parameter count and dominant dtype from a .safetensors header (8-byte length + JSON), no tensor read."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    count, by_dtype = 0, {}
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        n = 1
        for dim in tensor["shape"]:
            n *= dim
        count += n
        by_dtype[tensor["dtype"]] = by_dtype.get(tensor["dtype"], 0) + n
    return count, (max(by_dtype, key=by_dtype.get) if by_dtype else None)


def model_info(folder: Path) -> tuple[int | None, str | None]:
    """Parameters (from the safetensors headers) and dtype (config.json ``torch_dtype``/``dtype``, else the weights')."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelImportError(f"{folder / 'config.json'} is not readable JSON: {exc}") from None
    dtype = config.get("torch_dtype") or config.get("dtype")
    total, weights_dtype = 0, None
    for path in sorted(folder.rglob("*.safetensors")):
        count, weights_dtype = safetensors_parameters(path)
        total += count
    if dtype is None and weights_dtype:
        dtype = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}.get(weights_dtype, weights_dtype.lower())
    return (total or None), dtype


def _remote_digest(s3: Any, bucket: str, key: str) -> str | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("Metadata", {}).get(DIGEST_KEY)


def import_folder(s3: Any, bucket: str, model_id: str, revision: str, folder: Path, *,
                  progress: Callable[[int], None] | None = None) -> Manifest:
    """Upload ``folder`` under the model's prefix, skipping unchanged files; write the manifest last."""
    prefix = prefix_for(model_id, revision)
    folder = Path(folder)
    files = scan(folder)
    parameters, dtype = model_info(folder)
    manifest = Manifest(model_id, revision, prefix, files, parameters, dtype)
    for entry in files:
        key = prefix + entry.path
        if _remote_digest(s3, bucket, key) == entry.sha256:
            manifest.skipped.append(entry.path)
            if progress:
                progress(entry.size)
            continue
        s3.upload_file(str(folder / entry.path), bucket, key, Callback=progress,
                       ExtraArgs={"Metadata": {DIGEST_KEY: entry.sha256}, "ServerSideEncryption": "aws:kms"})
        manifest.uploaded.append(entry.path)
    s3.put_object(Bucket=bucket, Key=prefix + MANIFEST, Body=manifest.to_json().encode(),
                  ContentType="application/json", ServerSideEncryption="aws:kms")
    return manifest


def download_from_hub(model_id: str, revision: str, dest: Path, token: str | None = None) -> Path:
    """A snapshot of the Hub repository in ``dest`` (huggingface_hub resumes partial downloads itself)."""
    from huggingface_hub import snapshot_download

    prefix_for(model_id, revision)
    return Path(snapshot_download(repo_id=model_id, revision=revision, local_dir=str(dest), token=token))
