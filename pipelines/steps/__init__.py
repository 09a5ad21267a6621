"""SageMaker Pipeline step scripts: prepare -> train -> evaluate (the check reads its report).

They run inside the Hugging Face training/processing containers and locally on CPU in the tests;
heavy imports (torch, transformers, peft) stay inside the functions that need them.
"""
