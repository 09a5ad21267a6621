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

With a **release manifest** (``pins``: prompt -> alias -> version and content hash; staging and
prod), the manifest rules instead: each pinned version must exist under its number with the
pinned hash (it is created from the file, under that number, when the file holds that content);
any mismatch fails the sync before a write, naming prompt, version and both hashes. Each pinned
alias is then set to its version with all traffic, whoever moved it (reported). Files the
manifest does not pin follow the rules above.

A **prompt A/B experiment** (``experiments``: prompt, alias and the arms' version weights, or the
promoted winner at 100%) sets that alias's weights on every sync; the file and manifest rules
leave an experiment's alias to it.
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
    aliases_reset: list[str] = field(default_factory=list)  # moved through the API, set back to the release's pin

    def as_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "unchanged": self.unchanged, "aliases_moved": self.aliases_moved,
                "aliases_kept": self.aliases_kept, "aliases_reset": self.aliases_reset}


class PromotionMismatch(ValueError):
    """The release pins a content hash the catalog or the files do not hold: the deploy stops."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("prompt release pins refused: " + "; ".join(problems))


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


def sync_files(
    store: PromptCatalogStore,
    files: list[PromptFile],
    *,
    author: str = SYNC_AUTHOR,
    pins: dict[str, dict[str, dict]] | None = None,
    experiments: list[dict] | None = None,
) -> SyncReport:
    """``pins``: the release manifest's prompt pins; ``experiments``: ``{name, prompt, alias, targets}``."""
    if not author.startswith(SYNC_AUTHOR):
        raise ValueError(f"author: must start with {SYNC_AUTHOR!r} so later syncs recognise their own moves, got {author!r}")
    report = SyncReport()
    governed = {(e["prompt"], e["alias"]) for e in experiments or []}
    pins = pins or {}
    if pins:
        _promote(store, files, pins, governed, author, report)
    for prompt in files:
        pid = prompt.prompt_id
        if pid in pins:
            continue
        state = store.sync_state(pid)
        version, created = _file_version(store, prompt, state, author)
        (report.created if created else report.unchanged).append(f"{pid}@v{version}")
        recorded: dict[str, int] = state.get("aliases", {})
        owned: dict[str, int] = {}
        for name in prompt.aliases:
            if (pid, name) in governed:
                continue  # the experiment sets this alias below
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
    for experiment in experiments or []:
        _apply_experiment(store, experiment, author, report)
    return report


def _move_to(store: PromptCatalogStore, pid: str, name: str, targets: list[dict], author: str) -> tuple[Alias | None, int | None]:
    """(alias before, new revision or None when it is already there)."""
    try:
        current: Alias | None = store.get_alias(pid, name)
    except AliasNotFound:
        current = None
    wanted = [(t["version"], t["weight"]) for t in targets]
    if current is not None and sorted((t.version, t.weight) for t in current.targets) == sorted(wanted):
        return current, None
    moved = store.move_alias(pid, name, targets, expected_revision=current.revision if current else 0, updated_by=author)
    return current, moved.revision


def _promote(store: PromptCatalogStore, files: list[PromptFile], pins: dict[str, dict[str, dict]],
             governed: set[tuple[str, str]], author: str, report: SyncReport) -> None:
    """Check every pin against the catalog and the files, then create pinned versions and set the aliases."""
    from lambdas.runtime.prompt_catalog.errors import VersionNotFound

    by_id = {f.prompt_id: f for f in files}
    problems: list[str] = []
    to_create: dict[tuple[str, int], PromptFile] = {}
    for pid, aliases in sorted(pins.items()):
        prompt = by_id.get(pid)
        file_hash = prompt.content.content_hash() if prompt else None
        for alias_name, pin in sorted(aliases.items()):
            number, wanted = int(pin["version"]), pin["content_hash"]
            try:
                held = store.get_version(pid, number).content_hash
            except VersionNotFound:
                held = None
            if held is not None and held != wanted:
                problems.append(f"{pid} v{number} (alias {alias_name}): the release pins hash {wanted} but this "
                                f"catalog's v{number} holds {held}")
            elif held is None and file_hash != wanted:
                problems.append(f"{pid} v{number} (alias {alias_name}): the release pins hash {wanted} but "
                                + (f"prompts/{pid}.yaml holds {file_hash}" if prompt else f"there is no prompts/{pid}.yaml")
                                + f", and this catalog has no v{number} to promote")
            elif held is None:
                to_create[(pid, number)] = prompt
    if problems:
        raise PromotionMismatch(problems)
    for (pid, number), prompt in sorted(to_create.items()):
        store.create_version(pid, prompt.content, change_note=f"promoted by release (v{number})", author=author,
                             description=prompt.description, owner=prompt.owner, tags=prompt.tags, at_version=number)
        report.created.append(f"{pid}@v{number}")
    for pid, aliases in sorted(pins.items()):
        prompt = by_id.get(pid)
        owned: dict[str, int] = {}
        file_version = None
        for alias_name, pin in sorted(aliases.items()):
            if (pid, alias_name) in governed:
                continue
            number = int(pin["version"])
            if prompt is not None and pin["content_hash"] == prompt.content.content_hash():
                file_version = number
            before, revision = _move_to(store, pid, alias_name, [{"version": number, "weight": 100}], author)
            if revision is None:
                report.unchanged.append(f"{pid}:{alias_name}@v{number}")
                owned[alias_name] = before.revision
                continue
            owned[alias_name] = revision
            report.aliases_moved.append(f"{pid}:{alias_name} -> v{number}")
            if before is not None and not before.updated_by.startswith(SYNC_AUTHOR):
                report.aliases_reset.append(f"{pid}:{alias_name} was at {_describe(before)} (moved by "
                                            f"{before.updated_by or 'unknown'}); set to the release's v{number}")
        if prompt is not None and file_version is not None:
            # Remember it like a file sync would, so a later sync without a manifest continues from here.
            owned = {a: r for a, r in owned.items() if a in prompt.aliases}
            wanted_state = {"content_hash": prompt.content.content_hash(), "version": file_version, "aliases": owned}
            if store.sync_state(pid) != wanted_state:
                store.record_sync(pid, **wanted_state)


def _apply_experiment(store: PromptCatalogStore, experiment: dict, author: str, report: SyncReport) -> None:
    from lambdas.runtime.prompt_catalog.errors import PromptValidationError

    pid, name, targets = experiment["prompt"], experiment["alias"], experiment["targets"]
    try:
        _before, revision = _move_to(store, pid, name, targets, f"{author} experiment {experiment['name']}")
    except PromptValidationError as exc:
        raise PromotionMismatch([f"experiment {experiment['name']}: {pid}:{name}: {exc}"]) from None
    split = " + ".join(f"v{t['version']} {t['weight']}%" for t in targets)
    if revision is not None:
        report.aliases_moved.append(f"{pid}:{name} -> {split} (experiment {experiment['name']})")


def sync_directory(store: PromptCatalogStore, root: str | Path, *, author: str = SYNC_AUTHOR,
                   pins: dict | None = None, experiments: list[dict] | None = None) -> SyncReport:
    """Validate every file under ``root`` first; any problem fails the sync before a write."""
    loaded = load_prompt_dir(root)
    loaded.raise_for_problems()
    return sync_files(store, loaded.files, author=author, pins=pins, experiments=experiments)
