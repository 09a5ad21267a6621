"""Cost: the environment's budget (the estimate itself is ``llmops.cost``)."""

from llmops.constructs.cost.budget import ALERT_THRESHOLDS, EnvironmentBudget

__all__ = ["ALERT_THRESHOLDS", "EnvironmentBudget"]
