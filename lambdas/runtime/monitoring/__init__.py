"""LLM and RAG monitoring runtime: metrics over interaction records, capture parsing, baselines and drift.

``metrics.cheap_metrics`` is the model-free part the query Lambda calls per request; ``scoring``
is the batch scorer over captured traffic; ``drift`` builds baselines and compares against them.
Heavy libraries (Pyphen, VADER, scikit-learn, scipy, the MiniLM model) load on first use.
"""
