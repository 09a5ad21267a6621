"""Prompt catalog runtime: versioned, immutable prompt templates with aliases and rendering.

Modules: ``model`` (content, versions, aliases, ``RenderedPrompt``), ``templates`` (LangChain
parsing, validation, rendering), ``store`` (DynamoDB), ``client`` (``PromptCatalogClient``
with an in-memory cache), ``files`` and ``sync`` (prompts as code), ``diff``.
"""
