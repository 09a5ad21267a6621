"""CDK constructs, one subpackage per capability; shared building blocks live in ``core``.

Import from the capability package: ``from llmops.constructs.rag import VectorStore``.
"""
