"""DDP: the train entry script under torchrun with two CPU processes (gloo), as on a multi-GPU node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipelines.steps.test_train import _args

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.xdist_group("fine-tuning-train")

REPO_ROOT = Path(__file__).resolve().parents[3]


def _torchrun(tmp_path: Path, model_dir: Path, nproc: int, **overrides) -> subprocess.CompletedProcess:
    # The command the training toolkit runs: torchrun --nnodes 1 --nproc_per_node N train_entry.py <hyperparameters>
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
               "--nproc_per_node", str(nproc), str(REPO_ROOT / "pipelines" / "train_entry.py"),
               *_args(tmp_path, model_dir, **overrides)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_two_process_ddp_trains_one_model_and_rank_zero_writes_it(tmp_path, tiny_model_dir):
    done = _torchrun(tmp_path, tiny_model_dir, 2, max_steps=4, logging_steps=2, per_device_batch_size=3)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert report["world_size"] == 2 and report["device"] == "cpu"
    assert report["global_steps"] == 4  # 4 optimiser steps of 2 x 3 examples, gradients all-reduced
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "out" / "model.safetensors").is_file()  # merged by rank 0 only


def test_qlora_across_instances_fails_with_the_reason(tmp_path, tiny_model_dir, monkeypatch):
    from pipelines.steps import train as train_step
    from pipelines.steps._io import StepFailed

    # Two nodes of one process each, as torchrun sets it; checked before any GPU is needed.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    monkeypatch.setattr(train_step, "has_cuda", lambda: True)
    args = train_step.build_parser().parse_args(_args(tmp_path, tiny_model_dir, strategy="qlora", use_cpu="false"))
    with pytest.raises(StepFailed, match=r"strategy qlora runs on one instance only; this run has 2 instances"):
        train_step.validate_args(args)
