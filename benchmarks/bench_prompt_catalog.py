"""Prompt catalog hot path, each figure beside a baseline measured in the same run.

1. Render by alias with ``PromptCatalogClient``'s cache warm vs. the uncached path a request
   would otherwise take (read the alias and the version, then render),
   both against moto DynamoDB in-process. Moto answers in microseconds where DynamoDB takes
   milliseconds, so the time ratio understates the saving; the DynamoDB-call count is exact.
2. Rendering with the runtime's standard-library f-string renderer vs. through LangChain's
   template classes (identical output, checked here and by a property test).
3. Cold import of the ``prompt_catalog_api`` handler (a fresh interpreter, as a Lambda init does) vs.
   ``import boto3`` alone, the floor every Python Lambda that talks to AWS pays.

Run: .venv/bin/python benchmarks/bench_prompt_catalog.py   (about 30 s on 2 cores)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
    os.environ.setdefault(name, value)

RENDERS = 2000
VARIABLES = {"question": "What is the notice period?", "context": "[1] (contract.pdf, page 3)\nThirty days. " * 20}


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_render() -> None:
    import boto3
    from moto import mock_aws

    from lambdas.runtime.prompt_catalog.client import PromptCatalogClient
    from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
    from lambdas.runtime.prompt_catalog.sync import sync_directory
    from lambdas.runtime.prompt_catalog.templates import langchain_render, render_content
    from tests.lambdas.prompt_catalog.conftest import create_catalog_table

    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_catalog_table(ddb, "bench")
        store = PromptCatalogStore("bench", dynamodb=ddb)
        sync_directory(store, ROOT / "prompts")
        calls: list[str] = []
        ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

        client = PromptCatalogClient("bench", store=store, cache_ttl_seconds=300)
        client.render("rag-answer", VARIABLES)  # warm the cache

        def cached():
            for _ in range(RENDERS):
                client.render("rag-answer", VARIABLES)

        def uncached():
            for _ in range(RENDERS):
                alias = store.resolve_alias("rag-answer", "prod")
                version = store.get_version("rag-answer", alias.targets[0].version)
                render_content(version.content, VARIABLES)

        calls.clear()
        t_cached = best_of(cached)
        cached_calls = len(calls) / 3
        calls.clear()
        t_uncached = best_of(uncached, repeat=1)
        uncached_calls = len(calls)
    per_cached = t_cached / RENDERS * 1e6
    per_uncached = t_uncached / RENDERS * 1e6
    print(f"render by alias, {RENDERS} renders of rag-answer (moto DynamoDB in-process)")
    print(f"  cached client        {per_cached:9.1f} us/render   {cached_calls / RENDERS:.3f} DynamoDB calls/render")
    print(f"  baseline uncached    {per_uncached:9.1f} us/render   {uncached_calls / RENDERS:.3f} DynamoDB calls/render")
    print(f"  ratio                {per_uncached / per_cached:9.1f}x faster with the cache")

    from lambdas.runtime.prompt_catalog.files import load_prompt_dir

    print(f"render {RENDERS} times, no I/O (per prompt file)")
    for prompt in load_prompt_dir(ROOT / "prompts").files:
        values = {name: VARIABLES.get(name, 3 if spec.type == "integer" else "text") for name, spec in prompt.content.variables.items()}
        assert render_content(prompt.content, values) == langchain_render(prompt.content, values)
        fast = best_of(lambda: [render_content(prompt.content, values) for _ in range(RENDERS)]) / RENDERS * 1e6
        slow = best_of(lambda: [langchain_render(prompt.content, values) for _ in range(RENDERS)]) / RENDERS * 1e6
        print(f"  {prompt.prompt_id:16s} runtime renderer {fast:7.1f} us   baseline LangChain {slow:8.1f} us   ratio {slow / fast:5.1f}x")


def _cold_import(code: str, runs: int = 5) -> float:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_NAMESPACE": "bench", "PYTHONDONTWRITEBYTECODE": "1"}
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"],
            capture_output=True, text=True, cwd=ROOT, env=env, check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def bench_cold_import() -> None:
    client = _cold_import("import lambdas.runtime.prompt_catalog.client")
    handler = _cold_import("import lambdas.prompt_catalog_api.handler")
    writes = _cold_import("import lambdas.prompt_catalog_api.handler; import langchain_core.prompts")
    baseline = _cold_import("import boto3")
    print("cold import (fresh interpreter, median of 5)")
    print(f"  PromptCatalogClient (what the RAG query loads) {client * 1000:5.0f} ms")
    print(f"  prompt_catalog_api handler (Lambda init)             {handler * 1000:7.0f} ms")
    print(f"  + langchain_core.prompts (first write only)  {writes * 1000:7.0f} ms")
    print(f"  baseline: import boto3                        {baseline * 1000:7.0f} ms")
    print(f"  ratio handler / boto3                         {handler / baseline:7.1f}x")
    print(f"  ratio client / boto3                          {client / baseline:7.1f}x")


if __name__ == "__main__":
    bench_render()
    bench_cold_import()
