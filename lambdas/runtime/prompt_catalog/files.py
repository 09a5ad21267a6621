"""Prompt files (``prompts/<id>.yaml``): prompts as code, reviewed in pull requests.

A file holds the prompt's metadata (``id``, ``description``, ``owner``, ``tags``), the
aliases sync-at-deploy points at the file's version (``aliases``), a ``change_note``, and the
version content (``PromptContent`` fields at top level). Validation collects every problem,
each located by file and field, instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.runtime.prompt_catalog.errors import Problem, PromptValidationError
from lambdas.runtime.prompt_catalog.model import (
    ALIAS_RE,
    PROMPT_ID_RE,
    RESERVED_ALIASES,
    PromptContent,
    parse_content,
)
from lambdas.runtime.prompt_catalog.templates import template_problems

METADATA_FIELDS = ("id", "description", "owner", "tags", "aliases", "change_note")
FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PromptFile:
    path: str
    prompt_id: str
    description: str
    owner: str
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    change_note: str
    content: PromptContent


@dataclass(frozen=True)
class FileProblem:
    path: str
    problem: Problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class LoadResult:
    files: list[PromptFile] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise PromptValidationError([Problem(p.path + (f": {p.problem.field}" if p.problem.field else ""), p.problem.message) for p in self.problems])


def _metadata_problems(data: dict[str, Any], stem: str | None) -> list[Problem]:
    problems = []
    pid = data.get("id")
    if not isinstance(pid, str) or not PROMPT_ID_RE.match(pid):
        problems.append(Problem("id", f"required: 1-128 characters of a-z, 0-9, '.', '_', '-', got {pid!r}"))
    elif stem is not None and pid != stem:
        problems.append(Problem("id", f"{pid!r} must match the file name ({stem}.yaml)"))
    for name in ("description", "owner", "change_note"):
        if name in data and not isinstance(data[name], str):
            problems.append(Problem(name, f"must be a string, got {type(data[name]).__name__}"))
    if not (isinstance(data.get("description"), str) and data["description"].strip()):
        problems.append(Problem("description", "required: say what the prompt is for"))
    for name in ("tags", "aliases"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(Problem(name, "must be a list of strings"))
    for alias in data.get("aliases", []) if isinstance(data.get("aliases"), list) else []:
        if isinstance(alias, str) and (not ALIAS_RE.match(alias) or alias in RESERVED_ALIASES):
            problems.append(Problem("aliases", f"{alias!r} is not a valid alias name (a-z, 0-9, _, -; not 'latest')"))
    return problems


def parse_prompt_data(data: Any, *, path: str = "<input>", stem: str | None = None) -> tuple[PromptFile | None, list[Problem]]:
    """Validate the parsed YAML of one prompt file: (file or None, problems)."""
    if not isinstance(data, dict):
        return None, [Problem("", "must be a YAML mapping with id, description and the prompt fields")]
    problems = _metadata_problems(data, stem)
    content = None
    try:
        content = parse_content({k: v for k, v in data.items() if k not in METADATA_FIELDS})
    except PromptValidationError as err:
        problems.extend(err.problems)
    if content is not None:
        problems.extend(template_problems(content))
    if problems or content is None:
        return None, problems
    return (
        PromptFile(
            path=path,
            prompt_id=data["id"],
            description=data["description"].strip(),
            owner=str(data.get("owner", "")),
            tags=tuple(data.get("tags", [])),
            aliases=tuple(dict.fromkeys(data.get("aliases", []))),
            change_note=str(data.get("change_note", "")),
            content=content,
        ),
        [],
    )


def load_prompt_file(path: str | Path) -> tuple[PromptFile | None, list[Problem]]:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem("", f"cannot read: {exc}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return None, [Problem("", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}")]
    return parse_prompt_data(data, path=str(path), stem=path.stem)


def prompt_paths(root: str | Path) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix in FILE_SUFFIXES) if root.is_dir() else []


def load_prompt_dir(root: str | Path) -> LoadResult:
    """Every prompt file under ``root`` (a directory or one file), with all problems found."""
    result = LoadResult()
    root = Path(root)
    if not root.exists():
        result.problems.append(FileProblem(str(root), Problem("", "no such file or directory")))
        return result
    seen: dict[str, str] = {}
    for path in prompt_paths(root):
        loaded, problems = load_prompt_file(path)
        result.problems.extend(FileProblem(str(path), p) for p in problems)
        if loaded is None:
            continue
        if loaded.prompt_id in seen:
            result.problems.append(FileProblem(str(path), Problem("id", f"{loaded.prompt_id!r} is also defined in {seen[loaded.prompt_id]}")))
            continue
        seen[loaded.prompt_id] = str(path)
        result.files.append(loaded)
    return result


class FilePromptSource:
    """Render prompts straight from ``prompts/*.yaml``, as the deployed catalog renders their synced versions.

    Same validation, same renderer and the same content hash as the catalog version the sync makes
    from the file; ``version`` is 0 because a file has no catalog number. For ``llmops local``.
    """

    def __init__(self, root: str | Path) -> None:
        loaded = load_prompt_dir(root)
        loaded.raise_for_problems()
        self.root = Path(root)
        self.files = {f.prompt_id: f for f in loaded.files}

    def render(self, prompt_id: str, variables: dict, alias: str = "prod", *, unit: str | None = None):
        from lambdas.runtime.prompt_catalog.errors import PromptNotFound
        from lambdas.runtime.prompt_catalog.model import RenderedPrompt
        from lambdas.runtime.prompt_catalog.templates import render_content

        prompt = self.files.get(prompt_id)
        if prompt is None:
            raise PromptNotFound(prompt_id)
        text, messages = render_content(prompt.content, variables)
        return RenderedPrompt(
            text=text,
            prompt_id=prompt_id,
            version=0,
            content_hash=prompt.content.content_hash(),
            model_parameters=prompt.content.model_parameters.as_dict(),
            alias=alias,
            messages=messages,
        )
