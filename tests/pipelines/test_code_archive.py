"""The step-code archive: deterministic bytes, the files the containers run, importable entry."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

from pipelines.code_archive import archive_bytes, write_code_archive


def test_archive_is_byte_identical_and_content_addressed(tmp_path):
    assert archive_bytes() == archive_bytes()
    first, second = write_code_archive(tmp_path), write_code_archive(tmp_path)
    assert first == second and first.read_bytes() == archive_bytes()


def test_archive_holds_the_steps_and_the_toolkit_entry_script(tmp_path):
    with tarfile.open(fileobj=io.BytesIO(archive_bytes()), mode="r:gz") as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
        tar.extractall(tmp_path, filter="data")
    assert "train_entry.py" in names
    for step in ("prepare", "train", "evaluate", "check", "metrics", "dataset"):
        assert f"pipelines/steps/{step}.py" in names
    assert not any("__pycache__" in n or n.startswith("tests") for n in names)
    # The processing entrypoint runs "python3 -m pipelines.steps.<step>" from the unpacked root.
    result = subprocess.run([sys.executable, "-m", "pipelines.steps.prepare", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "--dataset-uri" in result.stdout
    result = subprocess.run([sys.executable, "train_entry.py", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "--lora_r" in result.stdout
