"""Human review with SageMaker Augmented AI: the task template, routing, loops and results."""
