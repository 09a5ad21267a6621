"""RAG benchmarks: every figure printed beside a baseline measured in the same run, and the ratio.

1. Ingestion into pgvector (chunks/s): the platform's IngestionPipeline vs LangChain's
   ``PGVector.add_texts``, same chunks, same batching (one call per document), same HNSW index,
   (a) with a fixed-cost embedder, isolating each stack's own overhead, (b) with the real local model.
2. Query latency p50/p95 at 100k chunks, embedding excluded: HNSW search through PgVectorStore vs
   an exact scan of the same table (with recall@k of the HNSW results against the exact ones).
3. Cold start: import time of each RAG handler module in a fresh interpreter (and import + building
   its pipeline objects from the environment) vs a handler importing LangChain's AWS and community
   vector-store modules. Bundle size per function (pip, manylinux2014_aarch64, CPython 3.13).

Run: ``python benchmarks/bench_rag.py [--quick]`` (quick: smaller corpora, same measurements).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lambdas.runtime.rag.chunking import chunk_id, content_hash  # noqa: E402
from lambdas.runtime.rag.ingest import IngestionPipeline  # noqa: E402
from lambdas.runtime.rag.local_postgres import LocalPostgres  # noqa: E402
from lambdas.runtime.rag.model import Chunk  # noqa: E402
from lambdas.runtime.rag.pgvector import PgVectorStore  # noqa: E402

DIM = 384
WORDS = ("refund invoice warranty shipping laptop policy customer contract renewal payment battery screen "
         "support ticket onboarding badge access network printer holiday expense travel approval budget").split()
BASELINE_BUILD = REPO / ".build" / "bench"


def row(label: str, value: float, unit: str, baseline_label: str, baseline: float, *, higher_is_better: bool) -> None:
    ratio = (value / baseline if higher_is_better else baseline / value) if value and baseline else float("nan")
    print(f"  {label:<44} {value:>10.2f} {unit:<8} | {baseline_label:<34} {baseline:>10.2f} {unit:<8} | "
          f"ratio {ratio:5.2f}x {'(better)' if ratio >= 1 else '(worse)'}")


class FixedCostEmbedder:
    """Deterministic unit vectors from a small pool: near-zero, identical cost for both stacks."""

    dimension = DIM

    def __init__(self) -> None:
        rng = random.Random(7)
        self.pool = [self._unit([rng.gauss(0, 1) for _ in range(DIM)]) for _ in range(512)]

    @staticmethod
    def _unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    def _pick(self, text: str) -> list[float]:
        return self.pool[int.from_bytes(hashlib.blake2b(text.encode(), digest_size=2).digest(), "big") % 512]

    def embed_documents(self, texts):
        return [self._pick(t) for t in texts]

    def embed_query(self, text):
        return self._pick(text)


def as_langchain(embedder):
    from langchain_core.embeddings import Embeddings

    class Adapter(Embeddings):
        def embed_documents(self, texts):
            return embedder.embed_documents(list(texts))

        def embed_query(self, text):
            return embedder.embed_query(text)

    return Adapter()


def corpus(documents: int, chunks_per_document: int, seed: int = 1) -> dict[str, list[Chunk]]:
    rng = random.Random(seed)
    docs = {}
    for d in range(documents):
        document_id = f"s3://bench/uploads/doc-{d:05d}.txt"
        chunks = []
        for i in range(chunks_per_document):
            text = " ".join(rng.choice(WORDS) for _ in range(60)) + f" ({d}.{i})"
            h = content_hash(text)
            chunks.append(Chunk(chunk_id(document_id, i, h), document_id, text, {
                "source_bucket": "bench", "source_key": f"uploads/doc-{d:05d}.txt", "source_version": None,
                "page": 1 + i // 4, "start_offset": i * 400, "end_offset": i * 400 + len(text), "chunk_index": i,
                "content_hash": h, "document_type": "text", "language": "en"}))
        docs[document_id] = chunks
    return docs


def ingest_platform(conninfo: str, docs, embedder, table: str) -> float:
    store = PgVectorStore(conninfo, table=table, dimension=DIM)
    store.ensure_schema()
    pipeline = IngestionPipeline(store, embedder)
    started = time.perf_counter()
    for document_id, chunks in docs.items():
        pipeline.write_chunks(document_id, chunks)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def ingest_langchain(url: str, conninfo: str, docs, embedder, collection: str) -> float:
    import psycopg
    from langchain_postgres import PGVector

    vectorstore = PGVector(as_langchain(embedder), connection=url, collection_name=collection, embedding_length=DIM,
                           use_jsonb=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # same index as the platform table: same work
        conn.execute("CREATE INDEX IF NOT EXISTS lc_hnsw ON langchain_pg_embedding USING hnsw (embedding vector_cosine_ops)")
    started = time.perf_counter()
    for chunks in docs.values():
        vectorstore.add_texts([c.text for c in chunks], metadatas=[c.metadata for c in chunks], ids=[c.chunk_id for c in chunks])
    elapsed = time.perf_counter() - started
    vectorstore.delete_collection()
    return elapsed


def bench_ingestion(conninfo: str, url: str, quick: bool) -> None:
    print("\n1. Ingestion into pgvector (same chunks, one call per document, HNSW index on both tables)")
    docs_n, per_doc = (100, 20) if quick else (200, 25)
    docs = corpus(docs_n, per_doc)
    n = docs_n * per_doc
    fixed = FixedCostEmbedder()
    platform = ingest_platform(conninfo, docs, fixed, "bench_ingest_fixed")
    langchain = ingest_langchain(url, conninfo, docs, fixed, "bench_fixed")
    row(f"platform, fixed-cost embedder ({n} chunks)", n / platform, "chunks/s",
        "LangChain PGVector.add_texts", n / langchain, higher_is_better=True)

    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder

    model = LocalMiniLMEmbedder()
    model.model  # loading the model is not ingestion
    docs = corpus(4 if quick else 8, 20, seed=2)
    n = sum(len(c) for c in docs.values())
    platform = ingest_platform(conninfo, docs, model, "bench_ingest_model")
    langchain = ingest_langchain(url, conninfo, docs, model, "bench_model")
    row(f"platform, all-MiniLM-L6-v2 on CPU ({n} chunks)", n / platform, "chunks/s",
        "LangChain PGVector.add_texts", n / langchain, higher_is_better=True)


def bench_query(conninfo: str, quick: bool) -> None:
    import psycopg

    total = 20_000 if quick else 100_000
    print(f"\n2. Query latency at {total} chunks (embedding excluded), top-5; exact-scan baseline over 40 queries")
    import numpy as np  # test data only: the platform code itself never imports numpy

    rng = np.random.default_rng(3)
    centroids = rng.normal(size=(200, DIM))

    def clustered_batch(n: int) -> list[tuple[float, ...]]:
        # Clustered like real embeddings (topics), not uniform noise.
        v = centroids[rng.integers(0, len(centroids), n)] + rng.normal(scale=0.6, size=(n, DIM))
        return [tuple(row) for row in (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()]

    store = PgVectorStore(conninfo, table="bench_query", dimension=DIM)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_query")
    store.ensure_schema()
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP INDEX bench_query_embedding_idx")  # bulk load, then build the graph once
    per_doc = 1000
    for d in range(total // per_doc):
        document_id = f"doc-{d}"
        store.upsert(document_id, [
            Chunk(f"{d}-{i}", document_id, f"chunk {i} of {d}",
                  {"page": 1 + i % 10, "chunk_index": i, "language": "en" if i % 4 else "de"}, vector)
            for i, vector in enumerate(clustered_batch(per_doc))
        ])
    load = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        conn.execute(store.schema_statements()[-1])
        conn.execute("ANALYZE bench_query")
    build = time.perf_counter() - started
    print(f"  (loaded {total} chunks in {load:.1f} s, HNSW index built in {build:.1f} s)")

    queries = [list(v) for v in clustered_batch(60 if quick else 200)]

    def timed(search):
        out, lat = [], []
        for q in queries:
            t = time.perf_counter()
            out.append(search(q))
            lat.append((time.perf_counter() - t) * 1000)
        return out, lat

    for q in queries[:10]:
        store.search(q, 5)  # warm the cache
    hnsw, hnsw_ms = timed(lambda q: store.search(q, 5))
    filtered, filtered_ms = timed(lambda q: store.search(q, 5, {"language": "de"}))
    exact_conn = psycopg.connect(conninfo, autocommit=True)
    exact_conn.execute("SET enable_indexscan = off")
    exact_conn.execute("SET max_parallel_workers_per_gather = 0")
    from lambdas.runtime.rag.pgvector import vector_literal

    def exact(q):
        return [r[0] for r in exact_conn.execute(
            "SELECT chunk_id FROM bench_query ORDER BY embedding <=> %s::vector LIMIT 5", (vector_literal(q),))]

    exact_queries = queries[:40]  # an exact scan takes ~0.2 s: fewer of them
    truth, exact_ms = [], []
    for q in exact_queries:
        t = time.perf_counter()
        truth.append(exact(q))
        exact_ms.append((time.perf_counter() - t) * 1000)
    recall = statistics.mean(len({h.chunk.chunk_id for h in got} & set(want)) / 5 for got, want in zip(hnsw, truth))
    p = lambda values, q: statistics.quantiles(values, n=100)[q - 1]  # noqa: E731
    row("p50 PgVectorStore.search (HNSW)", p(hnsw_ms, 50), "ms", "exact scan, same table", p(exact_ms, 50), higher_is_better=False)
    row("p95 PgVectorStore.search (HNSW)", p(hnsw_ms, 95), "ms", "exact scan, same table", p(exact_ms, 95), higher_is_better=False)
    row("p95 with filter language=de", p(filtered_ms, 95), "ms", "target", 20.0, higher_is_better=False)
    row("p95 unfiltered", p(hnsw_ms, 95), "ms", "target", 20.0, higher_is_better=False)
    print(f"  recall@5 of HNSW vs exact: {recall:.3f}; filtered queries returning 5 hits: "
          f"{sum(len(f) == 5 for f in filtered)}/{len(filtered)}")
    exact_conn.close()
    store.close()


def import_seconds(statement: str, *, pythonpath: str | None = None, env: dict | None = None, runs: int = 3) -> float:
    """Median wall time of ``statement`` in a fresh interpreter (bytecode already compiled)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    full_env = {**os.environ, **(env or {})}
    if pythonpath:
        full_env["PYTHONPATH"] = pythonpath
    samples = []
    for _ in range(runs + 1):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=full_env)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples[1:])  # the first run compiles bytecode


def baseline_target(platform: str, python: str) -> Path:
    target = BASELINE_BUILD / f"langchain-baseline-{platform}-cp{python.replace('.', '')}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                        "--target", str(target), "--platform", platform, "--implementation", "cp",
                        "--python-version", python, "--only-binary=:all:", "langchain-aws==1.9.*", "langchain-community",
                        "langchain-text-splitters==1.1.3", "langchain-core==1.8.1", "opensearch-py==3.2.0",
                        "aws-lambda-powertools==3.37.0"], check=True)
        (target / ".complete").write_text("ok")
    return target


def bench_cold_start(quick: bool) -> None:
    print("\n3. Cold start: import in a fresh interpreter (median of 3)")
    env = {"POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "LLMOps", "AWS_DEFAULT_REGION": "eu-west-1",
           "VECTOR_STORE_BACKEND": "aurora-pgvector", "PG_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x",
           "EMBEDDING_PROVIDER": "sagemaker", "EMBEDDING_ENDPOINT_NAME": "embed", "LLM_PROVIDER": "sagemaker",
           "LLM_ENDPOINT_NAME": "llm", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    baseline_statement = ("import boto3, aws_lambda_powertools; from langchain_aws import ChatBedrockConverse, SagemakerEndpoint; "
                          "from langchain_community.vectorstores import OpenSearchVectorSearch; "
                          "from langchain_text_splitters import RecursiveCharacterTextSplitter")
    try:
        site = sys.path[-1] if "site-packages" in sys.path[-1] else next(p for p in sys.path if p.endswith("site-packages"))
        target = baseline_target("manylinux2014_x86_64", f"{sys.version_info.major}.{sys.version_info.minor}")
        baseline = import_seconds(baseline_statement, pythonpath=f"{target}:{site}", env=env)
        baseline_label = "LangChain aws+community handler"
    except (subprocess.CalledProcessError, RuntimeError, StopIteration) as exc:
        print(f"  (LangChain baseline unavailable: {str(exc)[-200:]}; using the 1.0 s from the issue)")
        baseline, baseline_label = 1.0, "LangChain handler (issue figure)"
    for name in ("rag_query", "rag_ingest"):
        module = f"lambdas.{name}.handler"
        seconds = import_seconds(f"import {module}", env=env)
        row(f"import {module}", seconds * 1000, "ms", baseline_label, baseline * 1000, higher_is_better=False)
        builder = "pipeline" if name == "rag_query" else "ingestion"
        seconds = import_seconds(f"import {module} as h; h.{builder}()", env={**env, "DLQ_URL": "https://sqs/x"})
        row(f"  + {builder}() built from the environment", seconds * 1000, "ms", baseline_label, baseline * 1000,
            higher_is_better=False)
        row(f"  + {builder}() vs the 300 ms target", seconds * 1000, "ms", "target", 300.0, higher_is_better=False)

    print("\n   Bundle size per function (unzipped; manylinux2014_aarch64, CPython 3.13, boto3 from the runtime)")
    try:
        from llmops.constructs.core.lambda_bundle import LambdaBundle, directory_size
    except ImportError:
        print("  (llmops.constructs.core.lambda_bundle not available)")
        return
    baseline_size = None
    if not quick:
        try:
            from llmops.constructs.core.lambda_bundle import PROVIDED_BY_RUNTIME

            base = baseline_target("manylinux2014_aarch64", "3.13")
            # Same rule as LambdaBundle: what the Lambda runtime ships (boto3, botocore, ...) is not counted.
            baseline_size = sum(directory_size(p) if p.is_dir() else p.stat().st_size for p in base.iterdir()
                                if p.name.split("-")[0].lower() not in PROVIDED_BY_RUNTIME) / 1e6
        except subprocess.CalledProcessError:
            baseline_size = None
    from llmops.stacks.rag import INGEST_PACKAGES, QUERY_PACKAGES

    for name, packages in (("rag_query", QUERY_PACKAGES), ("rag_ingest", INGEST_PACKAGES)):
        out = Path(tempfile.mkdtemp(prefix=f"bundle-{name}-"))
        try:
            size = directory_size(LambdaBundle(entry=name, runtime_packages=packages).build(out)) / 1e6
        finally:
            shutil.rmtree(out, ignore_errors=True)
        row(f"{name} bundle", size, "MB", "target", 50.0, higher_is_better=False)
        try:
            print(f"    closure check (its requirements alone, python -I -S): {bundle_smoke(name, packages)}")
        except subprocess.CalledProcessError as exc:
            print(f"    closure check could not install the requirements: {exc.stderr.decode()[-300:] if exc.stderr else exc}")
        if baseline_size:
            row(f"{name} bundle", size, "MB", "LangChain aws+community bundle", baseline_size, higher_is_better=False)


SMOKE = {
    "rag_ingest": """
import os
os.environ.update(POWERTOOLS_SERVICE_NAME="smoke", POWERTOOLS_METRICS_NAMESPACE="LLMOps", AWS_DEFAULT_REGION="eu-west-1")
import lambdas.rag_ingest.handler
from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.loaders import SourceRef, load_document
from lambdas.runtime.rag.pgvector import PgVectorStore
from lambdas.runtime.rag.embedders import SageMakerEmbedder, BedrockTitanEmbedder
html = load_document("a.html", b"<p>" + b"Refunds take five days. " * 200 + b"</p>")
pdf = load_document("a.pdf", PDF)
chunks = TokenChunker(64, 8).split("d", html, SourceRef("b", "a.html")) + TokenChunker().split("p", pdf, SourceRef("b", "a.pdf"))
PgVectorStore("host=127.0.0.1", table="t")
SageMakerEmbedder("e", dimension=384); BedrockTitanEmbedder("amazon.titan-embed-text-v2:0", dimension=384)
import lambdas.runtime.rag.opensearch, opensearchpy
from opensearchpy import OpenSearch, RequestsHttpConnection
from opensearchpy.helpers.signer import RequestsAWSV4SignerAuth
print("ok", len(chunks))
""",
    "rag_query": """
import os
os.environ.update(POWERTOOLS_SERVICE_NAME="smoke", POWERTOOLS_METRICS_NAMESPACE="LLMOps", AWS_DEFAULT_REGION="eu-west-1")
import lambdas.rag_query.handler
from lambdas.runtime.rag.prompting import DefaultPromptSource
from lambdas.runtime.rag.llm import SageMakerLlm, BedrockConverseLlm
prompt = DefaultPromptSource().render("rag-answer", {"question": "q", "context": "c"})
SageMakerLlm("e").payload(prompt); BedrockConverseLlm("m").request(prompt)
import lambdas.runtime.rag.opensearch, opensearchpy
from opensearchpy import OpenSearch, RequestsHttpConnection
import lambdas.runtime.prompt_catalog.client, lambdas.runtime.prompt_catalog.templates
from langchain_core.prompts import ChatPromptTemplate, FewShotPromptTemplate, PromptTemplate
chat = ChatPromptTemplate.from_messages([("system", "Use {context}"), ("human", "{question}")])
chat.format_messages(context="c", question="q")
few = FewShotPromptTemplate(examples=[{"q": "a", "a": "b"}], example_prompt=PromptTemplate.from_template("{q}: {a}"),
                            suffix="{question}", input_variables=["question"])
print("ok", PromptTemplate.from_template("{q}?").format(q="why"), few.format(question="x").count(":"))
""",
}


def bundle_smoke(name: str, packages: tuple[str, ...]) -> str:
    """Install the function's requirements for this interpreter, plus what the Lambda runtime provides,
    copy its sources, and run its code paths with nothing else importable (``python -I -S``)."""
    from llmops.constructs.core.lambda_bundle import LambdaBundle

    bundle = LambdaBundle(entry=name, runtime_packages=packages)
    target = BASELINE_BUILD / f"smoke-{name}-{bundle.deps_key()}"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        common = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                  "--target", str(target), "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
                  "--implementation", "cp", "--python-version", python, "--only-binary=:all:"]
        subprocess.run([*common, *bundle.requirements()], check=True, capture_output=True)
        subprocess.run([*common, "--upgrade", "boto3"], check=True, capture_output=True)  # what the runtime ships
        (target / ".complete").write_text("ok")
    code = Path(tempfile.mkdtemp(prefix=f"smoke-{name}-"))
    try:
        for path, rel in bundle.source_files():
            (code / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, code / rel)
        (code / "lambdas" / "runtime" / "__init__.py").touch()
        sys.path.insert(0, str(REPO))
        from tests.lambdas.rag.corpus import pdf_bytes

        script = f"import sys; sys.path[:0] = [{str(code)!r}, {str(target)!r}]; PDF = {pdf_bytes(['Invoices are due.'])!r}\n"
        result = subprocess.run([sys.executable, "-I", "-S", "-c", script + SMOKE[name]], capture_output=True, text=True)
        if result.returncode != 0:
            return "FAILED: " + result.stderr.strip().splitlines()[-1]
        return result.stdout.strip()
    finally:
        shutil.rmtree(code, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora (a minute or so)")
    parser.add_argument("--only", choices=("ingest", "query", "cold"), help="run one section")
    args = parser.parse_args()
    print(f"bench_rag ({'quick' if args.quick else 'full'}); {os.cpu_count()} CPUs")
    if args.only in (None, "cold"):
        bench_cold_start(args.quick)
    if args.only == "cold":
        return 0
    home = Path(tempfile.mkdtemp(prefix="llmops-bench-pg-"))
    home.chmod(0o755)
    server = LocalPostgres(home, settings={"shared_buffers": "512MB", "max_wal_size": "4GB"})
    try:
        conninfo = server.start()
        parts = dict(p.split("=", 1) for p in conninfo.split())
        url = f"postgresql+psycopg://{parts['user']}:{parts['password']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
        if args.only in (None, "ingest"):
            bench_ingestion(conninfo, url, args.quick)
        if args.only in (None, "query"):
            bench_query(conninfo, args.quick)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
