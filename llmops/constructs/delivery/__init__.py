"""Delivery: what the tooling account's pipeline may do inside an environment."""

from llmops.constructs.delivery.access import (
    add_gate_role,
    add_promote_role,
    gate_role_name,
    promote_role_name,
    step_role_name,
)

__all__ = ["add_gate_role", "add_promote_role", "gate_role_name", "promote_role_name", "step_role_name"]
