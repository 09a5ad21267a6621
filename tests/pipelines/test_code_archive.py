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


def test_archive_wheels_are_exactly_the_pinned_step_requirements():
    from pipelines.code_archive import step_requirements

    with tarfile.open(fileobj=io.BytesIO(archive_bytes()), mode="r:gz") as tar:
        wheels = sorted(n.split("/", 1)[1] for n in tar.getnames() if n.startswith("wheels/"))
        assert "pipelines/step-requirements.txt" in tar.getnames()
    pinned = {f"{name}-{version}" for name, version in step_requirements().items()}
    assert {"-".join(w.split("-")[:2]).lower() for w in wheels} == pinned
    # Binary wheels are for the training image's CPython 3.12 on x86_64 Linux.
    assert all("none-any" in w or ("cp312" in w and "x86_64" in w) for w in wheels)


def test_missing_wheels_fail_naming_them_and_the_fix(tmp_path):
    import pytest

    from pipelines.code_archive import MissingWheels

    with pytest.raises(MissingWheels, match=r"no wheel for rouge_score==0.1.2, .*run `make step-wheels`"):
        archive_bytes(tmp_path)


def test_archive_installs_offline_into_a_clean_virtualenv_and_the_metrics_run(tmp_path):
    """The evaluate step's imports resolve from the archive alone: a fresh venv, --no-index.

    The venv has this machine's CPython, not the image's 3.12, so the archive's three binary
    wheels (numpy is the image's) come for this Python from .build/step-wheels-host; every pure
    wheel and the requirement file are the archive's own.
    """
    import os
    from pipelines.code_archive import REPO_ROOT

    host = REPO_ROOT / ".build" / "step-wheels-host"
    assert any(host.glob("numpy-*.whl")), f"{host} is empty: run `make step-wheels`"
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(archive_bytes()), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)  # no index: only the given folders
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-cache-dir", "--disable-pip-version-check",
         "--find-links", "wheels", "--find-links", str(host), "-r", "pipelines/step-requirements.txt"],
        cwd=code, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    script = (
        "from pipelines.steps import metrics as m\n"
        "g = m.generation(['the cat sat on the mat'], ['the cat sat on the mat'])\n"
        "assert abs(g['rouge_l'] - 1) < 1e-9 and abs(g['bleu'] - 100) < 1e-6, g\n"
        "print(m.classification(['a', 'b'], ['a', 'a'])['accuracy'])\n"
    )
    done = subprocess.run([python, "-c", script], cwd=code, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "0.5", done.stderr[-3000:]
    # A clean venv: the platform's own packages (torch, transformers) are not importable there.
    assert subprocess.run([python, "-c", "import transformers"], env=env, capture_output=True).returncode != 0
