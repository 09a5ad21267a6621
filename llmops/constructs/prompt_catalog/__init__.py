"""Prompt catalog: the versioned template table, its grants and metrics."""

from llmops.constructs.prompt_catalog.catalog import ImportedPromptCatalog, PromptCatalog

__all__ = ["ImportedPromptCatalog", "PromptCatalog"]
