"""Serving: the local generative model and the SageMaker serving-container HTTP contract."""
