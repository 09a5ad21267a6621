"""Monitoring: LLM and RAG metrics, drift against baselines, and the retraining loop."""
