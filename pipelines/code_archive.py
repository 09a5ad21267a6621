"""The step-code archive that reaches S3 as a CDK asset (never uploaded by the SageMaker SDK).

A gzip tarball, because that is what the training toolkit unpacks from
``sagemaker_submit_directory``; the processing steps untar it in their entrypoint. Entries are
sorted with zeroed times and owners, so the bytes (and the asset hash) depend on content only.

It also carries the evaluate step's dependencies the image lacks (``pipelines/step-requirements.txt``)
as wheels under ``wheels/``: the jobs have no internet, so the processing entrypoint installs
them with ``pip install --no-index --find-links wheels``. ``make step-wheels`` fetches them into
``.build/step-wheels`` (the one step of the build that needs the package index).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from pathlib import Path

PIPELINES_DIR = Path(__file__).resolve().parent
REPO_ROOT = PIPELINES_DIR.parent
ROOT_ENTRYPOINTS = ("train_entry.py",)  # the toolkit runs sagemaker_program from the archive root
STEP_REQUIREMENTS = PIPELINES_DIR / "step-requirements.txt"
STEP_WHEELS_DIR = REPO_ROOT / ".build" / "step-wheels"


class MissingWheels(RuntimeError):
    """The vendored wheels are not there; the message says which and how to fetch them."""


def step_requirements() -> dict[str, str]:
    """``{normalised name: version}`` pinned in ``step-requirements.txt``."""
    pins = {}
    for line in STEP_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "_", name.strip()).lower()] = version.strip()
    return pins


def step_wheels(directory: Path | None = None) -> list[Path]:
    """One wheel per pinned requirement, at its pinned version; refuses a missing or extra one."""
    directory = directory or STEP_WHEELS_DIR
    found: dict[str, Path] = {}
    for wheel in sorted(directory.glob("*.whl")) if directory.is_dir() else []:
        name, version = wheel.name.split("-")[:2]
        found[f"{name.lower()}=={version}"] = wheel
    wanted = [f"{name}=={version}" for name, version in step_requirements().items()]
    missing = [w for w in wanted if w not in found]
    if missing:
        raise MissingWheels(
            f"{directory}: no wheel for {', '.join(missing)} (pipelines/step-requirements.txt); "
            "run `make step-wheels` once (it needs the package index), then synth again"
        )
    return [found[w] for w in wanted]


def archive_members(wheels_dir: Path | None = None) -> list[tuple[str, Path]]:
    members = [("pipelines/__init__.py", PIPELINES_DIR / "__init__.py")]
    members += [(f"pipelines/steps/{p.name}", p) for p in sorted((PIPELINES_DIR / "steps").glob("*.py"))]
    members += [(name, PIPELINES_DIR / name) for name in ROOT_ENTRYPOINTS]
    members += [("pipelines/step-requirements.txt", STEP_REQUIREMENTS)]
    members += [(f"wheels/{w.name}", w) for w in step_wheels(wheels_dir)]
    return sorted(members)


def archive_bytes(wheels_dir: Path | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in archive_members(wheels_dir):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    # Level 6: the wheels are already compressed; 9 costs synth time for no gain.
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


# (members' names, paths, sizes, mtimes) -> (digest, bytes) of the last archive built: every
# environment's fine-tuning stack writes the same archive, so one synth compresses it once, not 3 times.
_LAST_ARCHIVE: dict[tuple, tuple[str, bytes]] = {}


def write_code_archive(directory: Path) -> Path:
    """Write ``code.tar.gz`` into a content-addressed folder under ``directory``; return its path."""
    key = tuple((name, str(path), path.stat().st_size, path.stat().st_mtime_ns) for name, path in archive_members())
    if key not in _LAST_ARCHIVE:
        data = archive_bytes()
        _LAST_ARCHIVE.clear()
        _LAST_ARCHIVE[key] = (hashlib.sha256(data).hexdigest()[:16], data)
    digest, data = _LAST_ARCHIVE[key]
    target = directory / digest / "code.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return target
