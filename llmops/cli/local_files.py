"""Where the local commands keep their state, and which files under a folder they read."""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """``$LLMOPS_HOME``, else ``.llmops/`` at the repo root (a checkout), else ``~/.llmops``."""
    if os.environ.get("LLMOPS_HOME"):
        return Path(os.environ["LLMOPS_HOME"]).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "lambdas").is_dir():
        return repo / ".llmops"
    return Path.home() / ".llmops"


def prompts_dir() -> Path | None:
    """``$LLMOPS_PROMPTS_DIR``, else the checkout's ``prompts/`` (what the deploy syncs), else None."""
    if os.environ.get("LLMOPS_PROMPTS_DIR"):
        return Path(os.environ["LLMOPS_PROMPTS_DIR"]).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2] / "prompts"
    return repo if repo.is_dir() else None


def document_files(root: Path) -> list[Path]:
    """``root`` itself, or every file below it in sorted order, hidden files and folders skipped."""
    if root.is_file():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in sorted(filenames) if not name.startswith(".")]
    return found
