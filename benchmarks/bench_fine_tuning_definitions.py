"""How much the fine-tuning pipeline definitions add to `cdk synth` (all environments together).

Three variants of the same app, each in a fresh interpreter, timed from just before the
definitions are obtained until ``app.synth()`` returns:
- ``none``: no pipelines (the app's own synth cost, subtracted from the others),
- ``committed``: what FineTuningStack does: read ``pipelines/definitions/<env>.json``, check the
  config fingerprint, write the step-code archive, build FineTuningPipeline constructs (Fn::Sub),
- ``sdk`` (baseline): build the same definitions with the SageMaker SDK at synth (import + build),
  then the same constructs.
Figure: committed - none, beside the baseline sdk - none and their ratio. Best of REPEATS.
Each interpreter first synthesizes a small warm-up app: the first synth of a process loads
aws-cdk-lib's JavaScript (about 8 s on a 2-core machine), a cost every variant pays equally.

    .venv/bin/python benchmarks/bench_fine_tuning_definitions.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPEATS = 2
BUDGET_S = 5.0

SCRIPT = r"""
import sys, tempfile, time
from pathlib import Path
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from llmops.config import load_config
from llmops.constructs.fine_tuning.pipeline import FineTuningPipeline, load_compiled_definitions
from aws_cdk import aws_sagemaker as sagemaker
mode = sys.argv[1]
config = load_config()
# Warm-up: the first synth of a process loads most of aws-cdk-lib's JavaScript (seconds, and the
# same in every variant); do it outside the timed region so the difference is the definitions.
warm = App(context={"aws:cdk:bundling-stacks": []})
warm_stack = Stack(warm, "Warm")
warm_role = iam.Role(warm_stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
sagemaker.CfnPipeline(warm_stack, "P", pipeline_name="p", role_arn=warm_role.role_arn, pipeline_definition={"PipelineDefinitionBody": "{}"})
s3_assets.Asset(warm_stack, "A", path=__import__("os").path.abspath("pyproject.toml"))
warm.synth()
app = App(context={"aws:cdk:bundling-stacks": []})
stack = Stack(app, "Bench")
role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
start = time.perf_counter()
count = 0
if mode != "none":
    from pipelines.code_archive import write_code_archive
    if mode == "sdk":
        from pipelines.build import build_definitions
        definitions = {n: build_definitions(e)["pipelines"] for n, e in config.environments.items()}
    else:
        definitions = {n: load_compiled_definitions(e) for n, e in config.environments.items()}
    code = s3_assets.Asset(stack, "Code", path=str(write_code_archive(Path(tempfile.mkdtemp()))))
    for name, env in config.environments.items():
        for use_case, definition in definitions[name].items():
            FineTuningPipeline(stack, f"{name}-{use_case}", pipeline_name=f"{env.name_prefix}-ft-{use_case}",
                               definition=definition, role=role, artifacts_bucket_name="a", data_bucket_name="d",
                               key_arn="k", code=code, subnet_ids=["s1", "s2", "s3"], security_group_id="sg")
            count += 1
app.synth()
print(time.perf_counter() - start, count)
"""


def measure(mode: str, repeats: int = REPEATS) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True, text=True, check=True).stdout
        seconds, n = out.strip().splitlines()[-1].split()
        best, count = min(best, float(seconds)), int(n)
    return best, count


def main() -> None:
    none, _ = measure("none")
    committed, n = measure("committed")
    sdk, n_sdk = measure("sdk", repeats=1)  # tens of seconds: once is enough to show the gap
    assert n == n_sdk
    added, added_sdk = max(committed - none, 0.0), max(sdk - none, 0.0)
    ratio = added_sdk / added if added > 0 else float("inf")
    print(f"fine-tuning definitions: {n} pipelines (all environments), best of {REPEATS} fresh interpreters")
    print(f"  app synth without pipelines         : {none:7.2f} s")
    print(f"  added by committed JSON + Fn::Sub   : {added:7.2f} s   (budget {BUDGET_S:.0f} s: {'within' if added <= BUDGET_S else 'OVER'})")
    print(f"  baseline: added by SDK build        : {added_sdk:7.2f} s   ({ratio:.1f}x)")
    print(json.dumps({"pipelines": n, "synth_without_s": round(none, 2), "added_committed_s": round(added, 2),
                      "added_sdk_baseline_s": round(added_sdk, 2), "ratio": round(ratio, 1), "budget_s": BUDGET_S}))


if __name__ == "__main__":
    main()
