"""Inference runtime: model import into the artifacts bucket (``llmops models import``)."""
