"""Sync-at-deploy: make the catalog match the repo's ``prompts/*.yaml`` without undoing API work.

The sync remembers, on each prompt's ``META`` item, what it last published: the file's content
hash, the version that holds it, and for each alias the revision the sync itself wrote.

- **Versions.** A file gets a new version only when its content changed since the last sync and
  no existing version already holds that content (a file reverted to an older text points at
  that older version). Versions created through the API are never touched, and no other file's
  edit creates a version for this one. Old versions are never rewritten.
- **Aliases.** Each alias the file lists should point at the file's version with all traffic.
  A missing alias is created. An alias still at the revision the sync wrote (nobody moved it
  since) is moved when the file's version changed. An alias moved through the API since the
  last sync (an A/B split, a rollback, a canary) is **left alone and reported** in
  ``aliases_kept``; the sync takes it back only once the API points it at the file's version
  again. Aliases a file does not list are the API's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lambdas.runtime.prompt_catalog.errors import AliasConflict, AliasNotFound
from lambdas.runtime.prompt_catalog.files import PromptFile, load_prompt_dir
from lambdas.runtime.prompt_catalog.model import Alias
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore

# Every author name the sync writes starts with this (the deployed sync adds the stack id).
SYNC_AUTHOR = "prompt-sync"


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)  # "<id>@v<N>"
    unchanged: list[str] = field(default_factory=list)
    aliases_moved: list[str] = field(default_factory=list)  # "<id>:<alias> -> v<N>"
    aliases_kept: list[str] = field(default_factory=list)  # moved through the API: left alone, with why

    def as_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "unchanged": self.unchanged, "aliases_moved": self.aliases_moved,
                "aliases_kept": self.aliases_kept}


def _describe(alias: Alias) -> str:
    return " + ".join(f"v{t.version} {t.weight}%" for t in alias.targets)


def _file_version(store: PromptCatalogStore, prompt: PromptFile, state: dict, author: str) -> tuple[int, bool]:
    content_hash = prompt.content.content_hash()
    if state.get("content_hash") == content_hash:
        version, created = state["version"], False
    else:
        existing = store.find_version_by_hash(prompt.prompt_id, content_hash)
        if existing is not None:
            version, created = existing, False
        else:
            made, created = store.create_version(
                prompt.prompt_id,
                prompt.content,
                change_note=prompt.change_note or f"synced from {Path(prompt.path).name}",
                author=author,
                description=prompt.description,
                owner=prompt.owner,
                tags=prompt.tags,
                only_if_changed=False,
            )
            version = made.version
    if not created:
        store.update_metadata(prompt.prompt_id, description=prompt.description, owner=prompt.owner, tags=prompt.tags)
    return version, created


def sync_files(store: PromptCatalogStore, files: list[PromptFile], *, author: str = SYNC_AUTHOR) -> SyncReport:
    if not author.startswith(SYNC_AUTHOR):
        raise ValueError(f"author: must start with {SYNC_AUTHOR!r} so later syncs recognise their own moves, got {author!r}")
    report = SyncReport()
    for prompt in files:
        pid = prompt.prompt_id
        state = store.sync_state(pid)
        version, created = _file_version(store, prompt, state, author)
        (report.created if created else report.unchanged).append(f"{pid}@v{version}")
        recorded: dict[str, int] = state.get("aliases", {})
        owned: dict[str, int] = {}
        for name in prompt.aliases:
            try:
                current: Alias | None = store.get_alias(pid, name)
            except AliasNotFound:
                current = None
            if current is not None and [(t.version, t.weight) for t in current.targets] == [(version, 100)]:
                owned[name] = current.revision  # already where the file says (taken back if the API put it here)
                continue
            ours = current is None or recorded.get(name) == current.revision or (
                name not in recorded and current.updated_by.startswith(SYNC_AUTHOR)  # written by a sync before this state existed
            )
            if not ours:
                report.aliases_kept.append(
                    f"{pid}:{name} kept at {_describe(current)} (moved by {current.updated_by or 'unknown'}, "
                    f"revision {current.revision}); the file's version is v{version}"
                )
                continue
            try:
                moved = store.move_alias(pid, name, [{"version": version, "weight": 100}],
                                         expected_revision=current.revision if current else 0, updated_by=author)
            except AliasConflict:
                report.aliases_kept.append(f"{pid}:{name} kept: it was moved through the API during this sync")
                continue
            owned[name] = moved.revision
            report.aliases_moved.append(f"{pid}:{name} -> v{version}")
        wanted = {"content_hash": prompt.content.content_hash(), "version": version, "aliases": owned}
        if state != wanted:
            store.record_sync(pid, **wanted)
    return report


def sync_directory(store: PromptCatalogStore, root: str | Path, *, author: str = SYNC_AUTHOR) -> SyncReport:
    """Validate every file under ``root`` first; any problem fails the sync before a write."""
    loaded = load_prompt_dir(root)
    loaded.raise_for_problems()
    return sync_files(store, loaded.files, author=author)
