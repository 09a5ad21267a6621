"""What the prompt catalog stores: prompt content, versions, aliases and rendered prompts.

``PromptContent`` is the immutable part of a version: its canonical JSON is hashed into
``content_hash``, which every render returns so responses trace back to the exact prompt.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lambdas.runtime.prompt_catalog.errors import Problem, PromptValidationError

TECHNIQUES = ("zero-shot", "few-shot", "chain-of-thought")
KINDS = ("text", "chat")
VARIABLE_TYPES = ("string", "integer", "number", "boolean", "list", "object")
# LangChain message roles, plus the OpenAI-style names authors also write.
ROLES = ("system", "human", "ai", "user", "assistant")

PROMPT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# "latest" always means the highest version; nobody may create an alias that hides it.
RESERVED_ALIASES = frozenset({"latest"})

# A version's content (template, messages, examples) serialized as JSON may not exceed this.
MAX_CONTENT_BYTES = 1_000_000
MAX_EXAMPLES = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableSpec(_Strict):
    type: Literal["string", "integer", "number", "boolean", "list", "object"] = "string"
    description: str = Field("", max_length=1000)


class ModelParameters(_Strict):
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: tuple[str, ...] = Field((), max_length=16)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        return value

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p, "stop": list(self.stop)}


class ChatMessage(_Strict):
    role: Literal["system", "human", "ai", "user", "assistant"]
    content: str = Field(min_length=1)


class PromptContent(_Strict):
    """The immutable, hashed part of a prompt version.

    ``kind: text`` uses ``template`` (a LangChain f-string ``PromptTemplate``); ``kind: chat``
    uses ``messages`` (a ``ChatPromptTemplate``). ``technique: few-shot`` builds a
    ``FewShotPromptTemplate`` of ``prefix`` + ``examples`` (each rendered with
    ``example_template``) + ``template``.
    """

    kind: Literal["text", "chat"] = "text"
    technique: Literal["zero-shot", "few-shot", "chain-of-thought"] = "zero-shot"
    template: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    prefix: str = ""
    examples: tuple[dict[str, str], ...] = Field((), max_length=MAX_EXAMPLES)
    example_template: str | None = None
    example_separator: str = "\n\n"
    model_parameters: ModelParameters = ModelParameters()

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, VariableSpec]) -> dict[str, VariableSpec]:
        bad = [name for name in value if not VARIABLE_RE.match(name)]
        if bad:
            raise ValueError(f"variable names must be identifiers (letters, digits, _), got {bad}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "PromptContent":
        # Structural rules only; template parsing and variable checks live in templates.py.
        if self.kind == "text":
            if not self.template:
                raise ValueError("template: required when kind is 'text'")
            if self.messages is not None:
                raise ValueError("messages: only used when kind is 'chat' (use template)")
        else:
            if not self.messages:
                raise ValueError("messages: required (at least one) when kind is 'chat'")
            if self.template is not None:
                raise ValueError("template: only used when kind is 'text' (use messages)")
        if self.technique == "few-shot":
            if self.kind != "text":
                raise ValueError("technique: few-shot needs kind 'text' (FewShotPromptTemplate)")
            if not self.examples:
                raise ValueError("examples: few-shot needs at least one example")
            if not self.example_template:
                raise ValueError("example_template: required for few-shot")
        elif self.examples or self.example_template or self.prefix:
            raise ValueError(
                f"technique: examples, example_template and prefix are only used by few-shot, not {self.technique}"
            )
        return self

    def canonical_json(self) -> str:
        # Defaults are left out so adding an optional field later does not change old hashes.
        data = self.model_dump(mode="json", exclude_defaults=True)
        data.setdefault("kind", self.kind)
        data.setdefault("technique", self.technique)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def size_bytes(self) -> int:
        return len(self.canonical_json().encode("utf-8"))


def pydantic_problems(err: ValidationError, prefix: str = "") -> list[Problem]:
    """One ``Problem`` per pydantic error, located by its dotted field path."""
    problems = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif item["type"] == "literal_error":
            msg = f"got {item.get('input')!r}; allowed: {item['ctx']['expected']}"
        # Model-level validators put the field name at the start of the message.
        if not loc and ": " in msg and msg.split(": ", 1)[0].replace("_", "").isalnum():
            loc, msg = msg.split(": ", 1)
        path = ".".join(p for p in (prefix, loc) if p)
        problems.append(Problem(path, msg))
    return problems


def parse_content(data: Any, prefix: str = "") -> PromptContent:
    """Validate a mapping into ``PromptContent`` or raise ``PromptValidationError`` listing every problem."""
    if not isinstance(data, dict):
        raise PromptValidationError([Problem(prefix, "must be a JSON object")])
    try:
        return PromptContent.model_validate(data)
    except ValidationError as err:
        raise PromptValidationError(pydantic_problems(err, prefix)) from None


class AliasTarget(_Strict):
    version: int = Field(ge=1)
    weight: int = Field(100, ge=1, le=100)


class AliasTargets(_Strict):
    """One version, or two versions splitting traffic by integer weights summing to 100."""

    targets: tuple[AliasTarget, ...] = Field(min_length=1, max_length=2)

    @model_validator(mode="after")
    def _weights(self) -> "AliasTargets":
        total = sum(t.weight for t in self.targets)
        if total != 100:
            raise ValueError(f"targets: weights must sum to 100, got {total}")
        if len({t.version for t in self.targets}) != len(self.targets):
            raise ValueError("targets: an A/B split needs two different versions")
        return self


def check_prompt_id(prompt_id: Any, field: str = "prompt_id") -> str:
    if not isinstance(prompt_id, str) or not PROMPT_ID_RE.match(prompt_id):
        raise PromptValidationError(
            f"must be 1-128 characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit, got {prompt_id!r}",
            field,
        )
    return prompt_id


def check_alias_name(alias: Any, *, for_write: bool = False, field: str = "alias") -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise PromptValidationError(
            f"must be 1-64 characters of a-z, 0-9, '_', '-' starting with a letter, got {alias!r}", field
        )
    if for_write and alias in RESERVED_ALIASES:
        raise PromptValidationError(f"{alias!r} is reserved (it always means the highest version)", field)
    return alias


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version as stored."""

    prompt_id: str
    version: int
    content: PromptContent
    content_hash: str
    change_note: str
    author: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "version": self.version,
            "content_hash": self.content_hash,
            "change_note": self.change_note,
            "author": self.author,
            "created_at": self.created_at,
            **self.content.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class PromptInfo:
    """A prompt's descriptive metadata and its highest version number."""

    prompt_id: str
    description: str
    owner: str
    tags: tuple[str, ...]
    latest_version: int
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "description": self.description,
            "owner": self.owner,
            "tags": list(self.tags),
            "latest_version": self.latest_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Alias:
    """A named pointer to one version, or to two versions with traffic weights."""

    prompt_id: str
    name: str
    targets: tuple[AliasTarget, ...]
    revision: int
    updated_at: str
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "alias": self.name,
            "targets": [t.model_dump() for t in self.targets],
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt and the identity of the version that produced it (for metrics and logs)."""

    text: str
    prompt_id: str
    version: int
    content_hash: str
    model_parameters: dict[str, Any] = field(default_factory=dict)
    alias: str | None = None
    # Chat prompts also come as role/content messages, for chat-style model APIs.
    messages: tuple[dict[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_id": self.prompt_id,
            "version": self.version,
            "content_hash": self.content_hash,
            "model_parameters": self.model_parameters,
            "alias": self.alias,
            "messages": list(self.messages),
        }
