"""Summarize a synthesized cloud assembly: stacks, resources, cdk-nag results and cfn-lint.

`make synth` runs this after `cdk synth`; it exits non-zero when cdk-nag reported a violation
or cfn-lint found an error in any template.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ACK_KEY = "aws:cdk:acknowledged-rules"
LINT_CONFIG = Path(__file__).resolve().parent.parent / ".cfnlintrc.yaml"


@dataclass
class StackSummary:
    stage: str
    name: str
    template: Path
    resources: int
    acknowledgements: int
    resource_types: Counter = field(default_factory=Counter)


def _summaries(directory: Path, manifest: dict, stage: str) -> list[StackSummary]:
    result = []
    for stack_id, stack in sorted(manifest.get("artifacts", {}).items()):
        if stack.get("type") != "aws:cloudformation:stack":
            continue
        template_path = directory / stack["properties"]["templateFile"]
        template = json.loads(template_path.read_text())
        acks = 0
        metadata_file = directory / f"{stack_id}.metadata.json"
        if metadata_file.exists():
            for entries in json.loads(metadata_file.read_text()).values():
                acks += sum(len(e["data"]) for e in entries if e.get("type") == ACK_KEY)
        resources = template.get("Resources", {})
        result.append(
            StackSummary(
                stage=stage,
                name=stack.get("displayName", stack_id),
                template=template_path,
                resources=len(resources),
                acknowledgements=acks,
                resource_types=Counter(r["Type"] for r in resources.values()),
            )
        )
    return result


def stacks_in(cdk_out: Path) -> list[StackSummary]:
    """Every stack of every nested stage assembly in ``cdk_out``, and the app-level stacks (delivery)."""
    result: list[StackSummary] = []
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    for art_id, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") != "cdk:cloud-assembly":
            continue
        directory = cdk_out / artifact["properties"]["directoryName"]
        nested = json.loads((directory / "manifest.json").read_text())
        result += _summaries(directory, nested, art_id.removeprefix("assembly-"))
    result += _summaries(cdk_out, manifest, "(tooling)")
    return result


def nag_violations(cdk_out: Path) -> list[str]:
    report = cdk_out / "validation-report.json"
    if not report.exists():
        return []
    lines = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                lines.append(f"{violation['ruleName']} at {construct.get('constructPath')}")
    return lines


def lint_templates(templates: list[Path]) -> tuple[list[str], list[str]]:
    """cfn-lint every template: (errors, warnings) as printable lines."""
    import subprocess
    import sys

    errors: list[str] = []
    warnings: list[str] = []
    if not templates:
        return errors, warnings
    proc = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--config-file", str(LINT_CONFIG), "--format", "parseable",
         *map(str, templates)],
        capture_output=True,
        text=True,
    )
    for line in proc.stdout.splitlines():
        # parseable: file:line:col:endline:endcol:RULE:message
        parts = line.split(":", 6)
        if len(parts) < 7:
            continue
        target = errors if parts[5].startswith("E") else warnings
        target.append(line)
    if proc.returncode & 2 and not errors:
        errors.append(proc.stderr.strip() or "cfn-lint failed without output")
    return errors, warnings


def main(cdk_out: str = "cdk.out", *, lint: bool = True) -> int:
    out = Path(cdk_out)
    if not (out / "manifest.json").exists():
        print(f"error: {out} holds no cloud assembly; run `make synth` first")
        return 2
    do_lint = lint
    stacks = stacks_in(out)
    violations = nag_violations(out)
    errors, warnings = lint_templates([s.template for s in stacks]) if do_lint else ([], [])

    print(f"{'environment':<12} {'stack':<32} {'resources':>9} {'acks':>5}")
    for s in stacks:
        print(f"{s.stage:<12} {s.name:<32} {s.resources:>9} {s.acknowledgements:>5}")
    total = sum(s.resources for s in stacks)
    stages = sorted({s.stage for s in stacks} - {"(tooling)"})
    print(
        f"\n{len(stages)} environments ({', '.join(stages)})"
        + (" + delivery pipeline" if any(s.stage == "(tooling)" for s in stacks) else "")
        + f", {len(stacks)} stacks, {total} resources; "
        f"cdk-nag: {len(violations)} unacknowledged findings, "
        f"{sum(s.acknowledgements for s in stacks)} acknowledged (each with its reason in *.metadata.json); "
        + (f"cfn-lint: {len(errors)} errors, {len(warnings)} warnings" if do_lint else "cfn-lint: skipped")
    )
    for line in violations + errors + warnings:
        print("  " + line)
    over_budget = cost_summary(out, stages)
    return 1 if violations or errors or over_budget else 0


def cost_summary(out: Path, stages: list[str]) -> list[str]:
    """Print each environment's idle cost per day (templates counted); the ones over their cap."""
    from llmops.config import load_config
    from llmops.cost import IDLE, estimate

    config = load_config()
    over = []
    print("\nidle cost per day (`llmops cost ENV` itemises it):")
    for name in stages:
        if name not in config.environments:
            continue
        env = config.get(name)
        idle = estimate(env, cdk_out=out).total(IDLE)
        cap = env.cost.max_idle_per_day
        flag = ""
        if cap is not None and idle > cap:
            over.append(name)
            flag = f"  OVER cost.max_idle_per_day ${cap:,.2f}"
        print(f"  {name:<12} ${idle:>9,.2f}" + (f"   (cap ${cap:,.2f})" if cap is not None and not flag else "") + flag)
    return over

