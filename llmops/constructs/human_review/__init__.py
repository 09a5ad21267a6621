"""Human review: A2I flow definition and task UI for reviewing LLM answers."""

from llmops.constructs.human_review.review import HumanReview

__all__ = ["HumanReview"]
