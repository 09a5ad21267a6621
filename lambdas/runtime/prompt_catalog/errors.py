"""Errors of the prompt catalog; each maps to one HTTP status in the REST API."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prompt, located by a dotted field path (``variables.question.type``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class PromptCatalogError(Exception):
    """Base class; ``status`` is the HTTP status the REST API answers with."""

    status = 500
    code = "InternalError"

    def to_body(self) -> dict:
        return {"error": self.code, "message": str(self)}


class PromptValidationError(PromptCatalogError):
    """A prompt, alias or request is invalid; ``problems`` lists every finding."""

    status = 400
    code = "ValidationError"

    def __init__(self, problems: Iterable[Problem] | str, field: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(field, problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid input")

    def to_body(self) -> dict:
        return {
            "error": self.code,
            "message": str(self),
            "problems": [{"field": p.field, "message": p.message} for p in self.problems],
        }


class RenderVariablesError(PromptValidationError):
    """Variables passed to a render do not match what the version declares."""

    code = "InvalidVariables"

    def __init__(self, *, missing: Sequence[str] = (), extra: Sequence[str] = (), wrong_type: Sequence[Problem] = ()) -> None:
        self.missing = sorted(missing)
        self.extra = sorted(extra)
        problems: list[Problem] = []
        if self.missing:
            problems.append(Problem("variables", f"missing variable(s): {', '.join(self.missing)}"))
        if self.extra:
            problems.append(Problem("variables", f"unexpected variable(s): {', '.join(self.extra)}"))
        problems.extend(wrong_type)
        super().__init__(problems)

    def to_body(self) -> dict:
        body = super().to_body()
        body.update(missing=self.missing, extra=self.extra)
        return body


class ContentTooLarge(PromptValidationError):
    status = 413
    code = "ContentTooLarge"


class NotFound(PromptCatalogError):
    status = 404
    code = "NotFound"


class PromptNotFound(NotFound):
    def __init__(self, prompt_id: str) -> None:
        super().__init__(f"prompt {prompt_id!r} does not exist")


class VersionNotFound(NotFound):
    def __init__(self, prompt_id: str, version: int) -> None:
        super().__init__(f"prompt {prompt_id!r} has no version {version}")


class AliasNotFound(NotFound):
    def __init__(self, prompt_id: str, alias: str) -> None:
        super().__init__(f"prompt {prompt_id!r} has no alias {alias!r}")


class AliasConflict(PromptCatalogError):
    """An alias moved since the caller read it (optimistic locking)."""

    status = 409
    code = "AliasConflict"

    def __init__(self, prompt_id: str, alias: str, expected_revision: int, current_revision: int | None) -> None:
        self.current_revision = current_revision
        current = "does not exist" if current_revision is None else f"is at revision {current_revision}"
        super().__init__(
            f"alias {alias!r} of prompt {prompt_id!r} {current}, not {expected_revision}: "
            "read it again and retry with its current revision"
        )

    def to_body(self) -> dict:
        return {**super().to_body(), "current_revision": self.current_revision}


class VersionConflict(PromptCatalogError):
    """Too many concurrent writers kept taking the next version number."""

    status = 409
    code = "VersionConflict"
