"""Monitoring: LLM and RAG metrics, drift against baselines, and the retraining loop.

``metrics.cheap_metrics`` is the model-free part the query Lambda calls per request; ``scoring``
is the batch scorer over captured traffic; ``drift`` builds baselines and compares against them;
``retraining`` is the drift-alarm → fine-tuning loop. Heavy libraries (Pyphen, VADER,
scikit-learn, scipy, the MiniLM model) load on first use.
"""
