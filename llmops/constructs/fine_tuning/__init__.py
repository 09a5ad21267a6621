"""Fine-tuning: the compiled SageMaker pipeline per use case and the model registry with approvals."""

from llmops.constructs.fine_tuning.model_registry import ModelRegistry
from llmops.constructs.fine_tuning.pipeline import FineTuningPipeline, load_compiled_definitions

__all__ = ["FineTuningPipeline", "ModelRegistry", "load_compiled_definitions"]
