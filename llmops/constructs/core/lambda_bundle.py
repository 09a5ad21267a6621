"""LambdaBundle: builds a Lambda deployment folder locally, without Docker.

A bundle holds ``lambdas/__init__.py``, the shared runtime package (only the subpackages a
function names), the function's own folder, and its pip dependencies installed as manylinux
wheels for the Lambda platform (arm64, CPython 3.13). Dependencies are cached per requirements
hash under ``.build/lambda-deps/`` so repeated synths copy instead of calling pip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
BUILD_DIR = Path(os.environ.get("LLMOPS_BUILD_DIR", REPO_ROOT / ".build"))

PYTHON_VERSION = "3.13"
ARCHITECTURES = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# Lambda's Python runtime ships boto3/botocore; bundling them again only adds weight.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python_dateutil", "six")
_SKIP_NAMES = {"__pycache__", ".pytest_cache", "tests"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


class BundleError(RuntimeError):
    """A bundle could not be built; the message says which function and why."""


@dataclass(frozen=True)
class LambdaBundle:
    """What goes into one function's deployment package."""

    entry: str
    runtime_packages: tuple[str, ...] = ()
    architecture: str = "arm64"
    extra_files: tuple[str, ...] = field(default=())  # repo-relative paths copied as-is (e.g. prompts/)
    root: Path = REPO_ROOT  # the folder holding lambdas/; tests point it at a scratch tree
    # Leave the dependencies' own test suites out (scipy/numpy/scikit-learn ship ~32 MB of them,
    # which decides whether the monitoring scorer fits under 250 MB).
    prune_tests: bool = False

    def __post_init__(self) -> None:
        if not (self.lambdas_dir / self.entry / "handler.py").is_file():
            raise ValueError(f"entry: lambdas/{self.entry}/handler.py does not exist")
        for pkg in self.runtime_packages:
            if not (self.runtime_dir / pkg).is_dir() and not (self.runtime_dir / f"{pkg}.py").is_file():
                raise ValueError(f"runtime_packages: lambdas/runtime/{pkg} does not exist")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: {self.architecture!r}; allowed: {sorted(ARCHITECTURES)}")
        for path in self.extra_files:
            if not (self.root / path).exists():
                raise ValueError(f"extra_files: {path} does not exist")

    @property
    def lambdas_dir(self) -> Path:
        return self.root / "lambdas"

    @property
    def runtime_dir(self) -> Path:
        return self.lambdas_dir / "runtime"

    @property
    def function_dir(self) -> Path:
        return self.lambdas_dir / self.entry

    @property
    def requirements_file(self) -> Path:
        return self.function_dir / "requirements.txt"

    def requirements(self) -> list[str]:
        if not self.requirements_file.is_file():
            return []
        lines = (line.split("#", 1)[0].strip() for line in self.requirements_file.read_text().splitlines())
        return [line for line in lines if line]

    def source_files(self) -> list[tuple[Path, str]]:
        """(absolute path, path inside the bundle) for every code file, sorted for hashing."""
        runtime = self.runtime_dir
        roots: list[Path] = [self.lambdas_dir / "__init__.py", self.function_dir]
        roots += sorted(runtime.glob("*.py"))  # top-level runtime modules are shared glue
        for pkg in self.runtime_packages:
            roots.append(runtime / pkg if (runtime / pkg).is_dir() else runtime / f"{pkg}.py")
        roots += [self.root / p for p in self.extra_files]
        files: dict[str, Path] = {}
        for root in roots:
            candidates = [root] if root.is_file() else sorted(root.rglob("*"))
            for path in candidates:
                rel = path.relative_to(self.root)
                if not path.is_file() or _SKIP_NAMES & set(rel.parts) or path.suffix in _SKIP_SUFFIXES:
                    continue
                files[rel.as_posix()] = path
        return [(files[k], k) for k in sorted(files)]

    def deps_key(self) -> str:
        text = "\n".join([PYTHON_VERSION, ARCHITECTURES[self.architecture], *sorted(self.requirements())])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def asset_hash(self) -> str:
        digest = hashlib.sha256(self.deps_key().encode())
        if self.prune_tests:
            digest.update(b"prune_tests\0")
        for path, rel in self.source_files():
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def install_dependencies(self) -> Path:
        """Install the function's wheels into the cache (once per requirements hash)."""
        target = BUILD_DIR / "lambda-deps" / self.deps_key()
        if (target / ".complete").exists():
            return target
        reqs = self.requirements()
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if reqs:
            cmd = [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-compile", "--target", str(tmp),
                "--platform", ARCHITECTURES[self.architecture],
                # Python 3.13 Lambda runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels
                # fit, and some packages (psycopg-binary 3.3) publish only those for aarch64.
                "--platform", ARCHITECTURES[self.architecture].replace("manylinux2014", "manylinux_2_28"),
                "--implementation", "cp", "--python-version", PYTHON_VERSION,
                "--only-binary=:all:", *reqs,
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                tail = "\n".join(result.stderr.strip().splitlines()[-15:])
                raise BundleError(f"lambdas/{self.entry}: pip could not install {reqs} for "
                                  f"{self.architecture}/cp{PYTHON_VERSION}:\n{tail}")
            for name in os.listdir(tmp):
                if name.split("-")[0].lower() in PROVIDED_BY_RUNTIME or name == "bin":
                    shutil.rmtree(tmp / name, ignore_errors=True)
        (tmp / ".complete").write_text("\n".join(reqs))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return target

    def build(self, output_dir: str | Path) -> Path:
        """Write the complete bundle into ``output_dir`` (created if needed)."""
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        deps = self.install_dependencies()
        skip = (".complete", "tests") if self.prune_tests else (".complete",)
        # Hard links, not copies: the wheels are ~400 MB over 16k files per app and the cache is
        # never written after `.complete`, so linking them costs metadata only (copies where the
        # output is on another file system).
        shutil.copytree(deps, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*skip), copy_function=_link_or_copy)
        for path, rel in self.source_files():
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.unlink(missing_ok=True)  # never write through a link into the wheel cache
            shutil.copy2(path, dest)
        # Intermediate package markers so `lambdas.runtime.<pkg>` imports inside the bundle.
        (out / "lambdas" / "runtime").mkdir(parents=True, exist_ok=True)
        for marker in (out / "lambdas" / "__init__.py", out / "lambdas" / "runtime" / "__init__.py"):
            marker.touch(exist_ok=True)
        return out


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except FileExistsError:
        os.unlink(dst)
        os.link(src, dst)
    except OSError:  # another file system, or links refused: copy as before
        shutil.copy2(src, dst)


def directory_size(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
