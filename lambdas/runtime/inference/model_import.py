"""Copy a model (Hugging Face Hub snapshot or local folder) to ``s3://<artifacts>/base-models/<id>/<revision>/``.

Endpoints and fine-tuning read base models from there, so neither needs a Hub token nor the
internet. The copy is idempotent and resumable per file: each object carries its SHA-256 in its
metadata, and a file whose object already has the same digest and size is not uploaded again.
``manifest.json`` is written last (file list, sizes, digests, parameter count and dtype), so its
presence means the copy is complete. Used by ``llmops models import`` on the user's machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASE_MODELS_PREFIX = "base-models/"
MANIFEST = "manifest.json"
SHA_METADATA = "sha256"  # x-amz-meta-sha256 on every uploaded object
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Hub housekeeping that is not part of the model.
SKIPPED_PARTS = {".git", ".cache", ".huggingface", "__pycache__"}
# Bytes per element of the safetensors dtypes (for the parameter count and the dominant dtype).
SAFETENSORS_DTYPES = {"F64": "fp64", "F32": "fp32", "F16": "fp16", "BF16": "bf16", "F8_E4M3": "fp8", "F8_E5M2": "fp8",
                      "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
CHUNK = 8 * 1024 * 1024


class ModelImportError(ValueError):
    """Bad input (source, model id, revision, folder content): the message names the problem."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, forward slashes
    size: int
    sha256: str


@dataclass
class ImportResult:
    model_id: str
    revision: str
    s3_uri: str
    files: list[FileEntry]
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    parameters: int | None = None
    dtype: str | None = None
    commit: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def summary(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "revision": self.revision, "commit": self.commit, "s3_uri": self.s3_uri,
                "files": len(self.files), "bytes": self.total_bytes, "uploaded": len(self.uploaded),
                "skipped": len(self.skipped), "parameters": self.parameters, "dtype": self.dtype}


def check_ids(model_id: str, revision: str) -> None:
    if not MODEL_ID.match(model_id) or ".." in model_id:
        raise ModelImportError(f"model id {model_id!r}: expected 'org/name' or 'name' of letters, digits, '.', '_', '-'")
    if not REVISION.match(revision):
        raise ModelImportError(f"revision {revision!r}: expected a branch, tag or commit of letters, digits, '.', '_', '-'")


def model_prefix(model_id: str, revision: str) -> str:
    check_ids(model_id, revision)
    return f"{BASE_MODELS_PREFIX}{model_id}/{revision}/"


def iter_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not SKIPPED_PARTS.intersection(rel.parts) and rel.name != MANIFEST:
            yield path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def safetensors_summary(paths: list[Path]) -> tuple[int, str | None] | None:
    """Parameter count and dominant dtype from safetensors headers (8-byte length + JSON), without reading weights."""
    total, by_dtype = 0, {}
    for path in paths:
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) != 8:
                raise ModelImportError(f"{path.name}: not a safetensors file (shorter than its 8-byte header length)")
            (length,) = struct.unpack("<Q", head)
            if length > 100 * 1024 * 1024:
                raise ModelImportError(f"{path.name}: safetensors header of {length} bytes is implausible")
            try:
                header = json.loads(handle.read(length))
            except ValueError as exc:
                raise ModelImportError(f"{path.name}: unreadable safetensors header ({exc})") from None
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in tensor["shape"]:
                count *= int(dim)
            total += count
            by_dtype[tensor["dtype"]] = by_dtype.get(tensor["dtype"], 0) + count
    if not by_dtype:
        return None
    dominant = max(sorted(by_dtype), key=by_dtype.__getitem__)
    return total, SAFETENSORS_DTYPES.get(dominant, dominant.lower())


def model_facts(folder: Path) -> tuple[int | None, str | None]:
    """Parameter count (safetensors headers) and dtype (config.json ``torch_dtype``/``dtype``, else the weights')."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelImportError(f"{folder}: no config.json; a model folder has one (Hugging Face layout)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelImportError(f"{config_path}: not valid JSON ({exc})") from None
    declared = config.get("torch_dtype") or config.get("dtype")
    summary = safetensors_summary(sorted(folder.rglob("*.safetensors")))
    params = summary[0] if summary else config.get("num_parameters")
    dtype = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}.get(declared, declared) if declared else None
    return params, dtype or (summary[1] if summary else None)


def hub_snapshot(repo_id: str, revision: str, *, token: str | None = None, cache_dir: str | None = None,
                 local_files_only: bool = False) -> tuple[Path, str | None]:
    """Download (or find in the cache) a Hub snapshot; returns its folder and commit."""
    try:
        from huggingface_hub import snapshot_download
    except ModuleNotFoundError:
        raise ModelImportError("importing from the Hugging Face Hub needs huggingface_hub: pip install huggingface_hub") from None
    folder = Path(snapshot_download(repo_id=repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only))
    commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None
    return folder, commit


def _remote_digest(s3: Any, bucket: str, key: str) -> tuple[str | None, int | None]:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None, None
        raise
    return head.get("Metadata", {}).get(SHA_METADATA), head.get("ContentLength")


def import_folder(folder: Path, *, s3: Any, bucket: str, model_id: str, revision: str, commit: str | None = None,
                  progress: Callable[[int], Any] | None = None) -> ImportResult:
    """Upload every file of ``folder`` not already in place, then the manifest.

    ``progress(total_bytes)`` returns a bar with ``update(n)`` and ``close()`` (tqdm in the CLI).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelImportError(f"{folder}: not a folder")
    prefix = model_prefix(model_id, revision)
    params, dtype = model_facts(folder)
    paths = list(iter_files(folder))
    entries = [FileEntry(p.relative_to(folder).as_posix(), p.stat().st_size, sha256_of(p)) for p in paths]
    result = ImportResult(model_id, revision, f"s3://{bucket}/{prefix}", entries, parameters=params, dtype=dtype, commit=commit)
    total = result.total_bytes
    bar = progress(total) if progress else None
    for path, entry in zip(paths, entries):
        key = prefix + entry.path
        digest, size = _remote_digest(s3, bucket, key)
        if digest == entry.sha256 and size == entry.size:
            result.skipped.append(entry.path)
            if bar is not None:
                bar.update(entry.size)
            continue
        s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {SHA_METADATA: entry.sha256}},
                       Callback=bar.update if bar is not None else None)
        result.uploaded.append(entry.path)
    if bar is not None:
        bar.close()
    manifest = {"model_id": model_id, "revision": revision, "commit": commit, "parameters": params, "dtype": dtype,
                "total_bytes": total, "files": [asdict(e) for e in entries]}
    s3.put_object(Bucket=bucket, Key=prefix + MANIFEST, Body=json.dumps(manifest, indent=1, sort_keys=True).encode(),
                  ContentType="application/json")
    return result


def import_model(source: str, *, s3: Any, bucket: str, model_id: str | None = None, revision: str | None = None,
                 token: str | None = None, cache_dir: str | None = None, local_files_only: bool = False,
                 progress: Callable[[int], Any] | None = None) -> ImportResult:
    """``source`` is a local folder (``model_id`` required) or a Hub repo id (``model_id`` defaults to it)."""
    path = Path(source).expanduser()
    if path.exists():
        if not model_id:
            raise ModelImportError(f"{source}: a local folder needs --model-id (the id endpoints and config name it by)")
        return import_folder(path, s3=s3, bucket=bucket, model_id=model_id, revision=revision or "local", progress=progress)
    if not MODEL_ID.match(source) or "/" not in source:
        raise ModelImportError(f"{source!r} is neither an existing folder nor a Hugging Face repo id ('org/name')")
    revision = revision or "main"
    check_ids(model_id or source, revision)
    folder, commit = hub_snapshot(source, revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only)
    return import_folder(folder, s3=s3, bucket=bucket, model_id=model_id or source, revision=revision, commit=commit,
                         progress=progress)
