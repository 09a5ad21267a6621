"""Cost: an itemised estimate of each environment from its config and templates (stdlib only)."""

from llmops.cost.estimate import (
    CATEGORIES, IDLE, PER_PAGES, PER_QUERIES, PER_TRAINING_RUN, Estimate, Line, PriceError, PriceTable,
    daily_cost_of_instance, estimate,
)

__all__ = [
    "CATEGORIES", "IDLE", "PER_PAGES", "PER_QUERIES", "PER_TRAINING_RUN", "Estimate", "Line", "PriceError",
    "PriceTable", "daily_cost_of_instance", "estimate",
]
