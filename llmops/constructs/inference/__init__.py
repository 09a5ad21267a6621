"""Inference endpoints: the LLM and embeddings endpoints of an environment."""

from llmops.constructs.inference.endpoints import EmbeddingEndpoint, LlmEndpoint, ServingContext
from llmops.constructs.inference.images import image_uri

__all__ = ["EmbeddingEndpoint", "LlmEndpoint", "ServingContext", "image_uri"]
