"""Baseline for bench_synth: an app with the same stages and stack counts, one resource each."""

from __future__ import annotations

import json
import sys

from aws_cdk import App, CfnWaitConditionHandle, Stack, Stage

layout: dict[str, int] = json.loads(sys.argv[1])  # {"dev": 5, "staging": 5, ...}
app = App()
for stage_name, stack_count in layout.items():
    stage = Stage(app, stage_name) if stage_name else app  # "": stacks at the app's root
    for i in range(stack_count):
        CfnWaitConditionHandle(Stack(stage, f"Stack{i}" if stage_name else f"Root{i}"), "Handle")
app.synth()
