"""Entry script the SageMaker training toolkit runs (``sagemaker_program``); torchrun runs it per device."""

from pipelines.steps._io import run_step
from pipelines.steps.train import main

if __name__ == "__main__":
    raise SystemExit(run_step(main))
