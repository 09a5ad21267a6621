"""Where the RAG answer prompt comes from: the prompt catalog when configured, else a template in code."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lambdas.runtime.rag.model import Hit

if TYPE_CHECKING:  # the prompt catalog's model module builds pydantic models on import
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt

DEFAULT_PROMPT_ID = "rag-answer"
DEFAULT_TEMPLATE = """You answer questions using only the numbered context passages below.
Cite the passages you used as [1], [2], ... after the sentences that rely on them.
If the context does not contain the answer, say that you do not know.

Context:
{context}

Question: {question}

Answer:"""
DEFAULT_MODEL_PARAMETERS = {"temperature": 0.1, "max_tokens": 512, "stop": []}


class PromptSource(Protocol):
    """Same ``render`` signature as ``lambdas.runtime.prompt_catalog.client.PromptCatalogClient``."""

    def render(self, prompt_id: str, variables: dict, alias: str = "prod", *, unit: str | None = None) -> RenderedPrompt: ...


class DefaultPromptSource:
    """The built-in ``rag-answer`` template (version 0), used when no catalog table is configured."""

    template = DEFAULT_TEMPLATE
    variables = ("context", "question")

    def render(self, prompt_id: str, variables: dict, alias: str = "prod", *, unit: str | None = None) -> RenderedPrompt:
        if prompt_id != DEFAULT_PROMPT_ID:
            raise ValueError(f"prompt {prompt_id!r} is not built in; configure PROMPT_TABLE_NAME to use the catalog")
        missing = [name for name in self.variables if name not in variables]
        if missing:
            raise ValueError(f"missing prompt variable(s): {', '.join(missing)}")
        from lambdas.runtime.prompt_catalog.model import RenderedPrompt

        return RenderedPrompt(
            text=self.template.format(context=variables["context"], question=variables["question"]),
            prompt_id=DEFAULT_PROMPT_ID,
            version=0,
            content_hash=hashlib.sha256(self.template.encode()).hexdigest(),
            model_parameters=dict(DEFAULT_MODEL_PARAMETERS),
        )


def prompt_source_from_env(environ: Mapping[str, str] = os.environ) -> PromptSource:
    table = environ.get("PROMPT_TABLE_NAME")
    if not table:
        return DefaultPromptSource()
    from lambdas.runtime.prompt_catalog.client import PromptCatalogClient

    return PromptCatalogClient(table)


def citation_label(metadata: Mapping[str, Any]) -> str:
    source = metadata.get("source_key") or "?"
    if metadata.get("source_bucket"):
        source = f"s3://{metadata['source_bucket']}/{source}"
    return f"{source}, page {metadata.get('page', 1)}"


def format_context(hits: Sequence[Hit]) -> str:
    """Numbered passages, so the model can cite [n] and the answer can map [n] back to a source."""
    return "\n\n".join(f"[{n}] ({citation_label(hit.chunk.metadata)})\n{hit.chunk.text}" for n, hit in enumerate(hits, 1))
