"""Diff two prompt versions: a unified diff of the template text and the changed fields."""

from __future__ import annotations

import difflib
import json
from typing import Any

from lambdas.runtime.prompt_catalog.model import PromptVersion


def _template_text(version: PromptVersion) -> list[str]:
    content = version.content
    if content.kind == "chat":
        lines: list[str] = []
        for message in content.messages or ():
            lines.append(f"[{message.role}]")
            lines.extend(message.content.splitlines())
        return lines
    parts = []
    if content.technique == "few-shot":
        parts += [content.prefix, f"[example_template]\n{content.example_template}"]
    parts.append(content.template or "")
    return "\n".join(parts).splitlines()


def diff_versions(old: PromptVersion, new: PromptVersion) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: template lines and every other content field."""
    template_diff = list(
        difflib.unified_diff(
            _template_text(old), _template_text(new), fromfile=f"v{old.version}", tofile=f"v{new.version}", lineterm=""
        )
    )
    before = old.content.model_dump(mode="json")
    after = new.content.model_dump(mode="json")
    changes = {}
    for field in sorted(set(before) | set(after)):
        if field in ("template", "messages", "prefix", "example_template"):
            continue  # covered by the text diff
        if before.get(field) != after.get(field):
            changes[field] = {"from": before.get(field), "to": after.get(field)}
    return {
        "prompt_id": new.prompt_id,
        "from_version": old.version,
        "to_version": new.version,
        "from_hash": old.content_hash,
        "to_hash": new.content_hash,
        "identical": old.content_hash == new.content_hash,
        "template_diff": template_diff,
        "changes": json.loads(json.dumps(changes)),
    }
