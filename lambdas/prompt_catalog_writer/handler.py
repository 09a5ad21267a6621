"""Prompt version writer: the only principal that may create prompt versions (``PutItem``) and
write prompt metadata. The REST API, the sync-at-deploy custom resource and every ``grant_write``
grantee invoke it synchronously; it always creates versions with ``attribute_not_exists``, so a
version, once written, can be replaced by nobody. Protocol in ``lambdas/runtime/prompt_catalog/writer.py``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from lambdas.runtime.prompt_catalog.writer import WRITER_ENV, handle

logger = Logger()


@lru_cache(maxsize=1)
def get_store() -> PromptCatalogStore:
    if os.environ.get(WRITER_ENV):
        # Writing through itself would loop: the writer is the direct path.
        raise RuntimeError(f"{WRITER_ENV} must not be set on the version writer itself")
    return PromptCatalogStore.from_env()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = handle(get_store(), event)
    if "error" in result:
        logger.info("request rejected", extra={"status": result["error"]["status"], "error": result["error"]["body"].get("error")})
    elif result.get("created"):
        version = result["version"]
        logger.info("prompt version created", extra={"prompt_id": version["prompt_id"], "version": version["version"],
                                                      "content_hash": version["content_hash"], "author": version["author"]})
    return result
