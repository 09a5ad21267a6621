"""Errors the data-prep workflow routes on.

A Lambda's error name in Step Functions is the exception class name, so these names are part
of the state machine's contract: ``ServiceThrottled`` is retried with backoff, every other
error here (and any unexpected one) ends in the quarantine branch with its message as reason.
"""

from __future__ import annotations


class DataPrepError(Exception):
    """Base class: a document that cannot be prepared, with a reason a person can act on."""


class UnsupportedDocument(DataPrepError):
    """The file type is not one the workflow reads."""


class EncryptedDocument(DataPrepError):
    """A password-protected PDF: Textract and pypdf cannot read it."""


class CorruptDocument(DataPrepError):
    """The bytes do not match the declared type, or the file is truncated."""


class DocumentTooLarge(DataPrepError):
    """Over Textract's (or the workflow's) size limit for that type."""


class TextractJobFailed(DataPrepError):
    """The Textract job ended FAILED."""


class TextractPartialSuccess(DataPrepError):
    """The Textract job ended PARTIAL_SUCCESS: some pages are missing, so the text is incomplete."""


class UnsupportedLanguage(DataPrepError):
    """Comprehend cannot detect PII in this language: publishing unredacted text is not allowed."""


class InvalidRecords(DataPrepError):
    """A dataset upload has lines that are not valid records of its format."""


class ServiceThrottled(DataPrepError):
    """An AWS service throttled the call after the SDK's own retries; the workflow retries with backoff."""


# Error codes AWS services answer with when a caller goes too fast.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


def raise_if_throttled(exc: Exception, service: str) -> None:
    """Re-raise a botocore ClientError that means throttling as ``ServiceThrottled``."""
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None
    if code in THROTTLING_CODES:
        raise ServiceThrottled(f"{service} throttled the request ({code}); retry later") from exc
