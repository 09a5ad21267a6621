"""Data preparation: Textract extraction, Comprehend PII redaction, the workflow, Ground Truth labeling."""

from llmops.constructs.data_prep.document_extraction import DocumentExtraction
from llmops.constructs.data_prep.labeling_workteam import LabelingJobs, LabelingWorkteam
from llmops.constructs.data_prep.pii_redaction import PiiRedaction
from llmops.constructs.data_prep.workflow import DataPrepWorkflow

__all__ = ["DataPrepWorkflow", "DocumentExtraction", "LabelingJobs", "LabelingWorkteam", "PiiRedaction"]
