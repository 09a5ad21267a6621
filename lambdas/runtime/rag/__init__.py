"""Retrieval-augmented generation runtime shared by the RAG Lambdas and ``llmops local``.

Modules import their heavy dependencies (psycopg, opensearch-py, tokenizers, torch) lazily so
each Lambda handler only pays for the backend it actually uses.
"""
