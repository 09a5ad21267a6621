"""The environment's cost allocation tags, for the jobs the platform starts at run time.

Stack resources get their tags from CloudFormation; a training, processing or labeling job a
function starts does not, so the stage hands every function the four tags in ``COST_TAGS``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping


def cost_tags(environ: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """``[{"Key": ..., "Value": ...}]`` from ``COST_TAGS`` (empty when unset or malformed: tags never block a job)."""
    raw = (os.environ if environ is None else environ).get("COST_TAGS", "")
    try:
        tags: Any = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return []
    if not isinstance(tags, dict):
        return []
    return [{"Key": str(k), "Value": str(v)} for k, v in sorted(tags.items()) if isinstance(v, (str, int))]
