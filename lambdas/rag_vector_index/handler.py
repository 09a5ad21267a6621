"""Custom resource (CDK Provider onEvent): the OpenSearch Serverless vector index and its alias.

- Create/Update: ``ensure_index`` creates the index named after the mapping's fingerprint and
  points the alias at it. The physical id is that index name, so a mapping change yields a new
  physical id: CloudFormation then sends Delete for the old index once the update succeeded, and
  the alias has already moved. ``ReindexRequired`` says the new index is empty.
- Delete: the index is deleted when ``RemovalPolicy`` is ``destroy``, kept (and logged) when
  ``retain``. Deleting an index that is gone already succeeds.
- Data-access policy rules take up to a minute to apply after deploy, so 403 answers are
  retried with exponential backoff until shortly before the Lambda timeout, then reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent, event_source

from lambdas.runtime.rag.opensearch import SPACES, alias_targets, ensure_index, index_body, make_client

logger = Logger()
T = TypeVar("T")
SAFETY_MARGIN_S = 30.0
MAX_BACKOFF_S = 30.0


class AccessNotGranted(RuntimeError):
    """OpenSearch Serverless still answered 403 when the retry time ran out."""


@dataclass(frozen=True)
class IndexProperties:
    endpoint: str
    alias: str
    dimension: int
    space: str
    removal_policy: str

    @classmethod
    def parse(cls, props: Mapping[str, Any]) -> "IndexProperties":
        missing = [name for name in ("CollectionEndpoint", "Alias", "Dimension") if not props.get(name)]
        if missing:
            raise ValueError(f"missing resource properties: {', '.join(missing)}")
        try:
            dimension = int(props["Dimension"])  # CloudFormation passes numbers as strings
        except (TypeError, ValueError):
            raise ValueError(f"Dimension must be an integer, got {props['Dimension']!r}") from None
        space = props.get("Space", "cosinesimil")
        if space not in SPACES:
            raise ValueError(f"Space must be one of {', '.join(SPACES)}, got {space!r}")
        policy = props.get("RemovalPolicy", "retain")
        if policy not in ("destroy", "retain"):
            raise ValueError(f"RemovalPolicy must be destroy or retain, got {policy!r}")
        return cls(props["CollectionEndpoint"], props["Alias"], dimension, space, policy)


def retry_while_forbidden(call: Callable[[], T], *, deadline: float, what: str,
                          sleep: Callable[[float], None] | None = None, clock: Callable[[], float] | None = None) -> T:
    """Run ``call``, retrying 403 answers (policy propagation) with backoff until ``deadline``."""
    from opensearchpy.exceptions import AuthorizationException

    sleep = sleep or time.sleep
    clock = clock or time.monotonic

    delay, attempt = 2.0, 1
    while True:
        try:
            return call()
        except AuthorizationException as exc:
            if clock() + delay > deadline:
                raise AccessNotGranted(
                    f"{what}: OpenSearch Serverless still answers 403 after {attempt} attempts; check that the "
                    "collection's data-access policy names this function's role and that its role has "
                    "aoss:APIAccessAll on the collection"
                ) from exc
            logger.warning("403 from OpenSearch Serverless, data-access rules may still be propagating",
                           extra={"attempt": attempt, "retry_in_s": delay, "what": what})
            sleep(delay)
            delay, attempt = min(delay * 2, MAX_BACKOFF_S), attempt + 1


def _delete_index(client: Any, name: str) -> bool:
    from opensearchpy.exceptions import NotFoundError

    try:
        client.indices.delete(index=name)
        return True
    except NotFoundError:
        return False


@event_source(data_class=CloudFormationCustomResourceEvent)
@logger.inject_lambda_context
def handler(event: CloudFormationCustomResourceEvent, context: Any) -> dict[str, Any]:
    props = IndexProperties.parse(event.resource_properties)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
    client = make_client(props.endpoint, region)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    logger.info("vector index request", extra={"request_type": event.request_type, "alias": props.alias,
                                               "dimension": props.dimension, "space": props.space})

    if event.request_type in ("Create", "Update"):
        body = index_body(props.dimension, props.space)
        state = retry_while_forbidden(lambda: ensure_index(client, props.alias, body), deadline=deadline,
                                      what=f"create index for alias {props.alias}")
        if state.moved:
            logger.warning(
                "index mapping changed: alias moved to a new, empty index; re-ingest documents to fill it",
                extra={"alias": props.alias, "index": state.index, "previous": list(state.previous)},
            )
        return {
            "PhysicalResourceId": state.index,
            "Data": {"IndexName": state.index, "Alias": props.alias, "Created": str(state.created).lower(),
                     "ReindexRequired": str(state.moved).lower()},
        }

    index = event.physical_resource_id
    if not index.startswith(f"{props.alias}-"):
        # Not an index this resource created (e.g. a Create that failed before naming one).
        logger.info("nothing to delete", extra={"physical_resource_id": index})
        return {"PhysicalResourceId": index}
    live = retry_while_forbidden(lambda: alias_targets(client, props.alias), deadline=deadline,
                                 what=f"read alias {props.alias}")
    if props.removal_policy == "retain":
        logger.info("index retained (removal policy retain)", extra={"index": index, "live": index in live})
        return {"PhysicalResourceId": index}
    deleted = retry_while_forbidden(lambda: _delete_index(client, index), deadline=deadline, what=f"delete index {index}")
    logger.info("index deleted" if deleted else "index already gone", extra={"index": index, "was_live": index in live})
    return {"PhysicalResourceId": index}
