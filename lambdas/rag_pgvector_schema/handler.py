"""Custom resource (CDK Provider onEvent): pgvector extension, chunk table and HNSW index on Aurora.

The schema is ``PgVectorStore.schema_statements`` (the runtime store's own definition, so there is
one), applied by ``PgVectorStore.ensure_schema`` with the credentials in the cluster secret.

- Create/Update: idempotent ``CREATE ... IF NOT EXISTS``. A dimension change on an existing table
  fails with the store's message (re-embed into a new table) instead of silently keeping the old
  column; a new table name is a new physical id, so the old table is left in place.
- Delete: nothing is dropped. The rows are the cluster's data and follow the cluster's removal
  policy (deleted with it, or kept with its snapshot).
- An auto-paused Serverless v2 cluster takes ~15 s to resume; connection errors are retried with
  backoff until shortly before the Lambda timeout.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent, event_source

logger = Logger()
SAFETY_MARGIN_S = 30.0


def store_environment(props: Mapping[str, Any]) -> dict[str, str]:
    """The resource properties as the environment ``PgVectorStore.from_env`` reads."""
    missing = [name for name in ("SecretArn", "Database", "Table", "Dimension") if not props.get(name)]
    if missing:
        raise ValueError(f"missing resource properties: {', '.join(missing)}")
    try:
        int(props["Dimension"])
    except (TypeError, ValueError):
        raise ValueError(f"Dimension must be an integer, got {props['Dimension']!r}") from None
    return {
        "PG_SECRET_ARN": str(props["SecretArn"]),
        "PG_DATABASE": str(props["Database"]),
        "PG_TABLE": str(props["Table"]),
        "EMBEDDING_DIMENSION": str(props["Dimension"]),
    }


def apply_schema(environ: Mapping[str, str], *, deadline: float, secrets_client: Any = None) -> None:
    import psycopg

    from lambdas.runtime.rag.pgvector import PgVectorStore
    from lambdas.runtime.rag.store import StoreUnavailable

    store = PgVectorStore.from_env(environ, secrets_client=secrets_client)
    delay = 2.0
    try:
        while True:
            try:
                store.ensure_schema()
                return
            except (psycopg.OperationalError, StoreUnavailable) as exc:  # refused connect, or dropped mid-way
                store.close()
                if time.monotonic() + delay > deadline:
                    raise RuntimeError(f"could not reach the database to create the schema: {exc}") from exc
                logger.warning("database not reachable yet (resuming from auto-pause?)", extra={"retry_in_s": delay, "error": str(exc)})
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
    finally:
        store.close()


@event_source(data_class=CloudFormationCustomResourceEvent)
@logger.inject_lambda_context
def handler(event: CloudFormationCustomResourceEvent, context: Any) -> dict[str, Any]:
    environ = store_environment(event.resource_properties)
    physical_id = f"{environ['PG_DATABASE']}.{environ['PG_TABLE']}"
    if event.request_type == "Delete":
        logger.info("schema left in place: table data follows the cluster's removal policy", extra={"table": physical_id})
        return {"PhysicalResourceId": event.physical_resource_id or physical_id}
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    logger.info("applying pgvector schema", extra={"request_type": event.request_type, "table": physical_id,
                                                   "dimension": environ["EMBEDDING_DIMENSION"]})
    apply_schema(environ, deadline=deadline)
    return {"PhysicalResourceId": physical_id, "Data": {"Table": environ["PG_TABLE"], "Database": environ["PG_DATABASE"]}}
