"""Synth time of the whole platform beside an empty app with the same stages and stacks.

Each run is a whole `cdk synth` process (CLI + Python app + cdk-nag + bundling from the warm
cache), as a user runs it. Prints the medians and the ratio; target: ratio <= 3.
Also prints the CPU time (user + system) of each synth's whole process tree: on a machine
shared with other jobs the wall-clock ratio carries their queueing, the CPU ratio much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CDK = [str(REPO / "node_modules" / ".bin" / "cdk")]
ENV = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant: CLI, app, jsii
    return usage.ru_utime + usage.ru_stime


def synth(app_cmd: str | None, outdir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole `cdk synth`."""
    cmd = [*CDK, "synth", "**", "--quiet", "--no-notices", "-o", str(outdir)]
    if app_cmd:
        cmd += ["--app", app_cmd]
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"synth failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return elapsed, _children_cpu() - cpu


def layout_of(outdir: Path) -> dict[str, int]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    layout = {}
    for art_id, art in manifest["artifacts"].items():
        if art.get("type") == "cdk:cloud-assembly":
            nested = json.loads((outdir / art["properties"]["directoryName"] / "manifest.json").read_text())
            layout[art_id.removeprefix("assembly-")] = sum(
                1 for a in nested["artifacts"].values() if a.get("type") == "aws:cloudformation:stack")
    # App-level stacks (the delivery pipeline) count as their own group, "" in the empty app.
    top = sum(1 for a in manifest["artifacts"].values() if a.get("type") == "aws:cloudformation:stack")
    if top:
        layout[""] = top
    return layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        synth(None, work / "warm")  # warms the bundle cache and the OS file cache
        layout = layout_of(work / "warm")
        empty_cmd = f"{sys.executable} benchmarks/empty_app.py '{json.dumps(layout)}'"
        synth(empty_cmd, work / "empty-warm")
        platform, empty = [], []
        for i in range(args.runs):  # interleaved so machine noise hits both alike
            empty.append(synth(empty_cmd, work / f"empty{i}"))
            platform.append(synth(None, work / f"platform{i}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    p, e = statistics.median(w for w, _ in platform), statistics.median(w for w, _ in empty)
    pc, ec = statistics.median(c for _, c in platform), statistics.median(c for _, c in empty)
    stacks = sum(layout.values())
    print(f"layout: {layout} ({stacks} stacks)")
    print(f"empty app   median {e:6.2f} s  runs {[round(w, 2) for w, _ in empty]}  CPU {ec:6.2f} s")
    print(f"platform    median {p:6.2f} s  runs {[round(w, 2) for w, _ in platform]}  CPU {pc:6.2f} s")
    print(f"ratio platform/empty: {p / e:.2f}x (target <= 3.00x) {'OK' if p / e <= 3 else 'OVER TARGET'}; "
          f"CPU time {pc / ec:.2f}x")


if __name__ == "__main__":
    main()
