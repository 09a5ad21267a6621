"""Typed events of the data-prep functions: every handler validates its input here first.

A malformed event raises ``InvalidEvent`` whose message names each bad field
(``document.key: Field required``) instead of a bare ``KeyError`` deep inside a step; in the
state machine that message becomes the quarantine reason. Models ignore extra keys because the
Step Functions state carries the earlier steps' results beside the fields a step reads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from lambdas.runtime.data_prep.errors import DataPrepError

NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
# SageMaker job names and dataset names, as their APIs and datasets/ accept them.
JobName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
DatasetName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]

M = TypeVar("M", bound=BaseModel)


class InvalidEvent(DataPrepError, ValueError):
    """The event a function received is not the shape it documents."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def problems(err: ValidationError) -> str:
    """``field.path: message`` for each error, joined: what a person fixes."""
    out = []
    for item in err.errors():
        msg = item["msg"].removeprefix("Value error, ")
        loc = ".".join(str(p) for p in item["loc"])
        out.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(out)


def parse(model: type[M], event: Any, what: str) -> M:
    """``event`` validated as ``model``, or ``InvalidEvent`` naming ``what`` and every bad field."""
    try:
        return model.model_validate(event)
    except ValidationError as err:
        raise InvalidEvent(f"{what}: {problems(err)}") from None


# --- S3 and the workflow state ---------------------------------------------------------------------


class S3Bucket(_Event):
    name: NonEmpty


class S3Object(_Event):
    key: NonEmpty
    version_id: str | None = Field(None, alias="version-id")


class ObjectCreated(_Event):
    """The ``detail`` of an EventBridge S3 "Object Created" event."""

    bucket: S3Bucket
    object: S3Object


class Document(_Event):
    """``SourceDocument.to_dict()``: what Validate returns and every later step reads."""

    bucket: NonEmpty
    key: NonEmpty
    version_id: str | None = None
    size: int = Field(ge=0)
    kind: Literal["textract", "text", "records"]
    content_type: NonEmpty
    document_id: NonEmpty
    dataset: str | None = None


class ExtractStart(_Event):
    document: Document
    task_token: NonEmpty
    execution_id: str | None = None


class TextractCompletion(_Event):
    """The SNS message Textract publishes when a job ends."""

    job_id: NonEmpty = Field(alias="JobId")
    status: str | None = Field(None, alias="Status")


class Extraction(_Event):
    extracted_key: NonEmpty
    job_id: str | None = None


class EnrichInput(_Event):
    document: Document
    extraction: Extraction | None = None

    @model_validator(mode="after")
    def _extracted(self) -> "EnrichInput":
        if self.document.kind == "textract" and self.extraction is None:
            raise ValueError("extraction.extracted_key is required for a Textract document (the Extract step's result)")
        return self


class CustomStepInput(_Event):
    document: Document
    enriched_key: NonEmpty


class CustomResult(_Event):
    enriched_key: NonEmpty
    custom_step: str | None = None


class PublishInput(_Event):
    document: Document
    custom: CustomResult
    extraction: Extraction | None = None


# --- Ground Truth ------------------------------------------------------------------------------------


class LabelingStart(_Event):
    """``{"action": "start", ...}``: a direct invocation that starts a labeling job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["start"] = "start"
    job_name: JobName
    task_type: Literal["text-classification", "named-entity-recognition", "question-answer"]
    labels: list[NonEmpty] = Field(default_factory=list, max_length=30)
    document_ids: list[NonEmpty] = Field(min_length=1)
    dataset: DatasetName
    workers_per_object: int = Field(1, ge=1, le=9)

    @model_validator(mode="after")
    def _labels(self) -> "LabelingStart":
        if self.task_type != "question-answer" and not self.labels:
            raise ValueError(f"labels: at least one label is required for {self.task_type}")
        return self


class PostAnnotationPayload(_Event):
    s3_uri: Annotated[str, StringConstraints(pattern=r"^s3://[^/]+/.+")] = Field(alias="s3Uri")


class PostAnnotation(_Event):
    """Ground Truth's consolidation request of the question-answer task."""

    payload: PostAnnotationPayload
    label_attribute_name: NonEmpty = Field(alias="labelAttributeName")
