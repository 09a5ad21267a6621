"""The step-code archive that reaches S3 as a CDK asset (never uploaded by the SageMaker SDK).

A gzip tarball, because that is what the training toolkit unpacks from
``sagemaker_submit_directory``; the processing steps untar it in their entrypoint. Entries are
sorted with zeroed times and owners, so the bytes (and the asset hash) depend on content only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

PIPELINES_DIR = Path(__file__).resolve().parent
ROOT_ENTRYPOINTS = ("train_entry.py",)  # the toolkit runs sagemaker_program from the archive root


def archive_members() -> list[tuple[str, Path]]:
    members = [("pipelines/__init__.py", PIPELINES_DIR / "__init__.py")]
    members += [(f"pipelines/steps/{p.name}", p) for p in sorted((PIPELINES_DIR / "steps").glob("*.py"))]
    members += [(name, PIPELINES_DIR / name) for name in ROOT_ENTRYPOINTS]
    return sorted(members)


def archive_bytes() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in archive_members():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_code_archive(directory: Path) -> Path:
    """Write ``code.tar.gz`` into a content-addressed folder under ``directory``; return its path."""
    data = archive_bytes()
    target = directory / hashlib.sha256(data).hexdigest()[:16] / "code.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return target
