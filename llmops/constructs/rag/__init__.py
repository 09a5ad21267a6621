"""RAG retrieval backends behind one ``VectorStore`` type, and the factory that picks one from config."""

from llmops.constructs.rag.aurora_vector_store import AuroraVectorStore, ImportedAuroraVectorStore
from llmops.constructs.rag.factory import vector_store_for
from llmops.constructs.rag.kendra_retriever import KendraRetriever
from llmops.constructs.rag.opensearch_vector_store import ImportedOpenSearchVectorStore, OpenSearchVectorStore
from llmops.constructs.rag.vector_store import VectorStore

__all__ = [
    "AuroraVectorStore", "ImportedAuroraVectorStore", "ImportedOpenSearchVectorStore", "KendraRetriever",
    "OpenSearchVectorStore", "VectorStore", "vector_store_for",
]
