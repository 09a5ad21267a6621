"""Build every Lambda bundle of the app for real and report its unzipped size.

Unit tests skip bundling; this check proves the bundles build (manylinux wheels for arm64,
CPython 3.13) and that each stays under Lambda's 250 MB unzipped limit.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from llmops.constructs.core.lambda_bundle import BUILD_DIR, LambdaBundle, directory_size


def app_bundles() -> dict[str, LambdaBundle]:
    """The distinct bundles used by PlatformFunctions anywhere in the app, by entry."""
    import json

    from aws_cdk import App

    from llmops.app import build_app
    from llmops.config import REPO_ROOT
    from llmops.constructs.core.platform_function import PlatformFunction

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = build_app(App(context={**context, "aws:cdk:bundling-stacks": []}), nag=False)
    found: dict[str, LambdaBundle] = {}
    for node in app.node.find_all():
        if isinstance(node, PlatformFunction):
            found.setdefault(node.bundle.entry, node.bundle)
    return dict(sorted(found.items()))


def main(out: str | None = None, *, max_mb: float = 250.0) -> int:
    target = Path(out) if out else BUILD_DIR / "bundles"
    bundles = app_bundles()
    if not bundles:
        print("no Lambda functions in the app")
        return 0
    failed = 0
    print(f"{'function':<28} {'unzipped MB':>11} {'files':>6} {'seconds':>8}")
    for entry, bundle in bundles.items():
        folder = target / entry
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        try:
            bundle.build(folder)
        except Exception as exc:  # report every function, then fail
            print(f"{entry:<28} FAILED: {exc}")
            failed += 1
            continue
        size_mb = directory_size(folder) / 1e6
        files = sum(1 for p in folder.rglob("*") if p.is_file())
        flag = "  <-- over the limit" if size_mb > max_mb else ""
        failed += bool(flag)
        print(f"{entry:<28} {size_mb:>11.1f} {files:>6} {time.perf_counter() - started:>8.1f}{flag}")
    return 1 if failed else 0
