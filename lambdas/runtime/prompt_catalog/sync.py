"""Sync-at-deploy: make the catalog match the repo's ``prompts/*.yaml``.

A file whose content differs from its prompt's latest version becomes a new version; an
unchanged file writes nothing, so running the sync twice creates no versions (idempotent).
Old versions are never rewritten. The aliases a file lists are pointed at its version (all
traffic); aliases a file does not list are left to the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lambdas.runtime.prompt_catalog.errors import AliasNotFound
from lambdas.runtime.prompt_catalog.files import PromptFile, load_prompt_dir
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)  # "<id>@v<N>"
    unchanged: list[str] = field(default_factory=list)
    aliases_moved: list[str] = field(default_factory=list)  # "<id>:<alias> -> v<N>"

    def as_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "unchanged": self.unchanged, "aliases_moved": self.aliases_moved}


def sync_files(store: PromptCatalogStore, files: list[PromptFile], *, author: str = "prompt-sync") -> SyncReport:
    report = SyncReport()
    for prompt in files:
        version, created = store.create_version(
            prompt.prompt_id,
            prompt.content,
            change_note=prompt.change_note or f"synced from {Path(prompt.path).name}",
            author=author,
            description=prompt.description,
            owner=prompt.owner,
            tags=prompt.tags,
            only_if_changed=True,
        )
        (report.created if created else report.unchanged).append(f"{prompt.prompt_id}@v{version.version}")
        for alias in prompt.aliases:
            try:
                current = store.get_alias(prompt.prompt_id, alias)
            except AliasNotFound:
                current = None
            if current and len(current.targets) == 1 and current.targets[0].version == version.version:
                continue
            store.move_alias(
                prompt.prompt_id,
                alias,
                [{"version": version.version, "weight": 100}],
                expected_revision=current.revision if current else 0,
                updated_by=author,
            )
            report.aliases_moved.append(f"{prompt.prompt_id}:{alias} -> v{version.version}")
    return report


def sync_directory(store: PromptCatalogStore, root: str | Path, *, author: str = "prompt-sync") -> SyncReport:
    """Validate every file under ``root`` first; any problem fails the sync before a write."""
    loaded = load_prompt_dir(root)
    loaded.raise_for_problems()
    return sync_files(store, loaded.files, author=author)
