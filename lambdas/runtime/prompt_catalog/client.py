"""PromptCatalogClient: render catalog prompts from other runtime code (RAG query, monitoring).

Aliases are cached for ``cache_ttl_seconds`` (an alias move is seen within that time);
versions are immutable, so they are cached until evicted. A request therefore pays no
DynamoDB read once the cache is warm, and rendering needs no LangChain import.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from lambdas.runtime.prompt_catalog.model import Alias, PromptVersion, RenderedPrompt, check_alias_name
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from lambdas.runtime.prompt_catalog.templates import render_content


class PromptCatalogClient:
    """Render prompts by alias (A/B weights honoured) or by version."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: Any = None,
        s3: Any = None,
        cache_ttl_seconds: float = 30.0,
        max_cached_versions: int = 256,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        store: PromptCatalogStore | None = None,
    ) -> None:
        if cache_ttl_seconds < 0:
            raise ValueError(f"cache_ttl_seconds: must be >= 0, got {cache_ttl_seconds}")
        self.store = store or PromptCatalogStore(table_name, dynamodb=dynamodb, s3=s3)
        self.cache_ttl_seconds = cache_ttl_seconds
        self._max_versions = max_cached_versions
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._aliases: dict[tuple[str, str], tuple[float, Alias]] = {}
        self._versions: OrderedDict[tuple[str, int], PromptVersion] = OrderedDict()

    def render(self, prompt_id: str, variables: Mapping[str, Any], alias: str = "prod", *,
               unit: str | None = None) -> RenderedPrompt:
        """Render the version ``alias`` points to (one of two, by weight, for an A/B split).

        ``unit`` (a session, user or request id) makes the split sticky: the same unit always gets
        the same version. Without it each call draws at random.
        """
        check_alias_name(alias)
        resolved = self._alias(prompt_id, alias)
        return self._render(prompt_id, self.choose_version(resolved, unit), variables, alias)

    def render_version(self, prompt_id: str, version: int, variables: Mapping[str, Any]) -> RenderedPrompt:
        return self._render(prompt_id, version, variables, None)

    def choose_version(self, alias: Alias, unit: str | None = None) -> int:
        """Pick a target by weight: ``weight`` out of 100 requests (or units, when ``unit`` is given) get that version."""
        if len(alias.targets) == 1:
            return alias.targets[0].version
        if unit is not None:  # the platform's one sticky hash, salted per prompt alias
            from lambdas.runtime.experiments.assignment import assign

            chosen = assign(unit, [(str(t.version), t.weight) for t in alias.targets], salt=f"prompt:{alias.prompt_id}:{alias.name}")
            return int(chosen)
        draw = self._rng.randrange(100)
        first = alias.targets[0]
        return first.version if draw < first.weight else alias.targets[1].version

    def invalidate(self) -> None:
        with self._lock:
            self._aliases.clear()
            self._versions.clear()

    def _alias(self, prompt_id: str, alias: str) -> Alias:
        now = self._clock()
        key = (prompt_id, alias)
        with self._lock:
            cached = self._aliases.get(key)
        if cached and cached[0] > now:
            return cached[1]
        resolved = self.store.resolve_alias(prompt_id, alias)
        with self._lock:
            self._aliases[key] = (now + self.cache_ttl_seconds, resolved)
        return resolved

    def _version(self, prompt_id: str, version: int) -> PromptVersion:
        key = (prompt_id, version)
        with self._lock:
            hit = self._versions.get(key)
            if hit:
                self._versions.move_to_end(key)
                return hit
        loaded = self.store.get_version(prompt_id, version)
        with self._lock:
            self._versions[key] = loaded
            while len(self._versions) > self._max_versions:
                self._versions.popitem(last=False)
        return loaded

    def _render(self, prompt_id: str, version: int, variables: Mapping[str, Any], alias: str | None) -> RenderedPrompt:
        loaded = self._version(prompt_id, version)
        text, messages = render_content(loaded.content, variables)
        return RenderedPrompt(
            text=text,
            prompt_id=loaded.prompt_id,
            version=loaded.version,
            content_hash=loaded.content_hash,
            model_parameters=loaded.content.model_parameters.as_dict(),
            alias=alias,
            messages=messages,
        )
