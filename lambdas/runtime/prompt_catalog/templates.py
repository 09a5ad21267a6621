"""LangChain prompt templates for catalog content: parse, check variables, render.

A version is accepted only if its template parses, uses exactly the variables it declares,
its few-shot examples fit the example template, and a trial render succeeds.

Rendering at run time uses ``render_content``: the same f-string semantics as LangChain's
``PromptTemplate``/``FewShotPromptTemplate``/``ChatPromptTemplate`` written with the standard
library, so runtime clients (the RAG query Lambda) render without importing LangChain. Every
version's trial render compares both, and a property test holds them equal.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from lambdas.runtime.prompt_catalog.errors import ContentTooLarge, Problem, PromptValidationError, RenderVariablesError
from lambdas.runtime.prompt_catalog.model import MAX_CONTENT_BYTES, VARIABLE_RE, PromptContent

# LangChain's role names for the aliases authors may use.
_ROLE_NAMES = {"user": "human", "assistant": "ai"}
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list, tuple),
    "object": (dict,),
}


def _variables_of(text: str, field: str, problems: list[Problem]) -> set[str]:
    """Variables an f-string template uses; a parse failure is recorded as a problem."""
    from langchain_core.prompts.string import get_template_variables

    try:
        names = get_template_variables(text, "f-string")
    except (ValueError, KeyError, IndexError) as exc:
        problems.append(Problem(field, f"template does not parse: {exc}"))
        return set()
    bad = [n for n in names if not VARIABLE_RE.match(n)]
    if bad:
        problems.append(Problem(field, f"placeholders must be named identifiers like {{question}}, got {bad}"))
    return {n for n in names if VARIABLE_RE.match(n)}


def template_problems(content: PromptContent) -> list[Problem]:
    """Every problem with the templates of ``content`` (empty when it is valid)."""
    problems: list[Problem] = []
    size = content.size_bytes()
    if size > MAX_CONTENT_BYTES:
        return [Problem("content", f"{size} bytes serialized; the limit is {MAX_CONTENT_BYTES} bytes")]
    used: set[str] = set()
    if content.kind == "text":
        used |= _variables_of(content.template or "", "template", problems)
    else:
        for i, message in enumerate(content.messages or ()):
            used |= _variables_of(message.content, f"messages.{i}.content", problems)
    if content.technique == "few-shot":
        used |= _variables_of(content.prefix, "prefix", problems)
        example_vars = _variables_of(content.example_template or "", "example_template", problems)
        for i, example in enumerate(content.examples):
            missing = sorted(example_vars - set(example))
            extra = sorted(set(example) - example_vars)
            if missing:
                problems.append(Problem(f"examples.{i}", f"missing key(s) used by example_template: {', '.join(missing)}"))
            if extra:
                problems.append(Problem(f"examples.{i}", f"key(s) not used by example_template: {', '.join(extra)}"))
    declared = set(content.variables)
    undeclared = sorted(used - declared)
    unused = sorted(declared - used)
    if undeclared:
        problems.append(Problem("variables", f"template uses undeclared variable(s): {', '.join(undeclared)}"))
    if unused:
        problems.append(Problem("variables", f"declared but not used by the template: {', '.join(unused)}"))
    if not problems:
        # A trial render catches what parsing alone cannot, e.g. braces inside few-shot examples
        # (FewShotPromptTemplate formats the joined text a second time).
        sample = {name: _SAMPLES[spec.type] for name, spec in content.variables.items()}
        field = "examples" if content.technique == "few-shot" else "template"
        try:
            expected = langchain_render(content, sample)
            actual = _render(content, {k: _as_text(v) for k, v in sample.items()})
        except Exception as exc:  # any formatting failure is a content problem
            problems.append(Problem(field, f"trial render failed: {type(exc).__name__}: {exc}"))
        else:
            if actual != expected:
                problems.append(Problem(field, "renders differently from LangChain; please report this template"))
    return problems


_SAMPLES: dict[str, Any] = {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "list": ["x"], "object": {"k": "v"}}


def validate_content(content: PromptContent) -> None:
    problems = template_problems(content)
    if problems:
        cls = ContentTooLarge if problems[0].field == "content" else PromptValidationError
        raise cls(problems)


def build_template(content: PromptContent):
    """The LangChain template object for ``content`` (validate first)."""
    from langchain_core.prompts import ChatPromptTemplate, FewShotPromptTemplate, PromptTemplate

    variables = sorted(content.variables)
    if content.kind == "chat":
        return ChatPromptTemplate.from_messages(
            [(_ROLE_NAMES.get(m.role, m.role), m.content) for m in content.messages or ()]
        )
    if content.technique == "few-shot":
        return FewShotPromptTemplate(
            examples=[dict(e) for e in content.examples],
            example_prompt=PromptTemplate.from_template(content.example_template or ""),
            prefix=content.prefix,
            suffix=content.template or "",
            example_separator=content.example_separator,
            input_variables=variables,
        )
    return PromptTemplate(template=content.template or "", input_variables=variables)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))
    return str(value)


def check_variables(content: PromptContent, variables: Any) -> dict[str, str]:
    """Match ``variables`` to the declared ones (names and types); return them as text."""
    if not isinstance(variables, Mapping):
        raise PromptValidationError("must be an object mapping variable names to values", "variables")
    declared = content.variables
    missing = [n for n in declared if n not in variables]
    extra = [str(n) for n in variables if n not in declared]
    wrong: list[Problem] = []
    for name, spec in declared.items():
        if name not in variables:
            continue
        value = variables[name]
        ok = isinstance(value, _PYTHON_TYPES[spec.type]) and not (spec.type in ("integer", "number") and isinstance(value, bool))
        if not ok:
            wrong.append(Problem(f"variables.{name}", f"expected {spec.type}, got {type(value).__name__}"))
    if missing or extra or wrong:
        raise RenderVariablesError(missing=missing, extra=extra, wrong_type=wrong)
    return {name: _as_text(variables[name]) for name in declared}


def langchain_render(content: PromptContent, values: Mapping[str, Any]) -> tuple[str, tuple[dict[str, str], ...]]:
    """Render through LangChain's own template classes (validation and tests)."""
    template = build_template(content)
    text_values = {k: _as_text(v) for k, v in values.items()}
    if content.kind == "chat":
        value = template.format_prompt(**text_values)
        messages = tuple({"role": m.type, "content": str(m.content)} for m in value.to_messages())
        return value.to_string(), messages
    return template.format(**text_values), ()


_FORMATTER = string.Formatter()
# LangChain's get_buffer_string prefixes, by message type.
_PREFIXES = {"system": "System", "human": "Human", "ai": "AI"}


def _f(template: str, values: Mapping[str, str]) -> str:
    return _FORMATTER.vformat(template, (), values)


def _render(content: PromptContent, values: Mapping[str, str]) -> tuple[str, tuple[dict[str, str], ...]]:
    if content.kind == "chat":
        messages = tuple(
            {"role": _ROLE_NAMES.get(m.role, m.role), "content": _f(m.content, values)} for m in content.messages or ()
        )
        return "\n".join(f"{_PREFIXES[m['role']]}: {m['content']}" for m in messages), messages
    if content.technique == "few-shot":
        shots = [_f(content.example_template or "", example) for example in content.examples]
        pieces = [p for p in (content.prefix, *shots, content.template or "") if p]
        # Like FewShotPromptTemplate: the joined text is formatted once more with the inputs.
        return _f(content.example_separator.join(pieces), values), ()
    return _f(content.template or "", values), ()


def render_content(content: PromptContent, variables: Any) -> tuple[str, tuple[dict[str, str], ...]]:
    """Render validated ``content`` with ``variables``: (text, chat messages or ())."""
    return _render(content, check_variables(content, variables))


def coerce_variable(content: PromptContent, name: str, raw: str) -> Any:
    """Turn a command-line string into the declared type of variable ``name``."""
    spec = content.variables.get(name)
    if spec is None or spec.type == "string":
        return raw
    try:
        if spec.type == "integer":
            return int(raw)
        if spec.type == "number":
            return float(raw)
        if spec.type == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return raw.lower() == "true"
        value = json.loads(raw)
    except ValueError as exc:
        raise PromptValidationError(f"cannot read {raw!r} as {spec.type}: {exc}", f"variables.{name}") from None
    if not isinstance(value, _PYTHON_TYPES[spec.type]):
        raise PromptValidationError(f"expected a JSON {spec.type}, got {raw!r}", f"variables.{name}")
    return value
