"""The prompt catalog in DynamoDB: immutable versions, aliases with optimistic locking.

One table, items keyed by ``pk = P#<prompt_id>`` and ``sk``:

- ``META``: description, owner, tags, latest_version; ``gsi1pk = PROMPTS`` lists prompts.
- ``V#0000000001``: a version (never updated). Content over ``inline_limit`` bytes lives in
  S3 under ``<overflow_prefix><prompt_id>/<content_hash>.json`` and the item points to it.
- ``A#<alias>``: an alias's targets and ``revision`` (incremented on every move).

Version numbers are claimed with a conditional put (``attribute_not_exists``) on the next
number, retried on conflict, so concurrent writers get distinct consecutive versions.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from lambdas.runtime.prompt_catalog.errors import (
    AliasConflict,
    AliasNotFound,
    ContentTooLarge,
    Problem,
    PromptNotFound,
    PromptValidationError,
    VersionConflict,
    VersionNotFound,
)
from lambdas.runtime.prompt_catalog.model import (
    Alias,
    AliasTarget,
    AliasTargets,
    PromptContent,
    PromptInfo,
    PromptVersion,
    check_alias_name,
    check_prompt_id,
    pydantic_problems,
)

LIST_INDEX = "gsi1"
LIST_PARTITION = "PROMPTS"
META = "META"
# Comfortably under DynamoDB's 400 KB item limit, leaving room for the other attributes.
INLINE_LIMIT_BYTES = 350_000
MAX_CREATE_ATTEMPTS = 25
MAX_PAGE = 100


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pk(prompt_id: str) -> dict[str, str]:
    return {"S": f"P#{prompt_id}"}


def _vsk(version: int) -> dict[str, str]:
    return {"S": f"V#{version:010d}"}


def _is_conditional_failure(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException"


_TOKEN_PREFIX = "p1:"


def encode_page_token(prompt_id: str) -> str:
    import base64

    return base64.urlsafe_b64encode((_TOKEN_PREFIX + prompt_id).encode()).decode().rstrip("=")


def decode_page_token(token: Any) -> str:
    """The prompt id a ``next_token`` continues after; a token this API did not make is a 400."""
    import base64
    import binascii

    if not isinstance(token, str) or not 1 <= len(token) <= 256:
        raise PromptValidationError("is not a token this API returned", "next_token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise PromptValidationError("is not a token this API returned (not base64url)", "next_token") from None
    if not raw.startswith(_TOKEN_PREFIX):
        raise PromptValidationError("is not a token this API returned", "next_token")
    return check_prompt_id(raw[len(_TOKEN_PREFIX):], "next_token")


def parse_targets(raw: Any) -> tuple[AliasTarget, ...]:
    """Validate alias targets (1 version, or 2 with weights summing to 100)."""
    from pydantic import ValidationError

    try:
        return AliasTargets.model_validate({"targets": raw}).targets
    except ValidationError as err:
        raise PromptValidationError(pydantic_problems(err)) from None


class PromptCatalogStore:
    """Read and write the catalog table (and the S3 overflow objects)."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: Any = None,
        s3: Any = None,
        overflow_bucket: str | None = None,
        overflow_prefix: str = "prompts/",
        inline_limit: int = INLINE_LIMIT_BYTES,
        version_writer: Any = None,
    ) -> None:
        if not table_name:
            raise ValueError("table_name: the prompt catalog table name is required")
        import boto3

        self.table_name = table_name
        self._ddb = dynamodb or boto3.client("dynamodb")
        self._s3 = s3
        self.overflow_bucket = overflow_bucket
        self.overflow_prefix = overflow_prefix
        self.inline_limit = inline_limit
        # Deployed API and sync functions hold no PutItem: versions and metadata go through the
        # writer function (lambdas/runtime/prompt_catalog/writer.py), which alone may create versions.
        self.version_writer = version_writer

    @classmethod
    def from_env(cls, environ: Any = None) -> "PromptCatalogStore":
        """The store a Lambda function is configured for (``PROMPT_TABLE_NAME``, overflow bucket)."""
        import os

        import boto3

        from lambdas.runtime.prompt_catalog.writer import WRITER_ENV, LambdaVersionWriter

        env = os.environ if environ is None else environ
        writer = env.get(WRITER_ENV)
        return cls(
            env["PROMPT_TABLE_NAME"],
            dynamodb=boto3.client("dynamodb"),
            s3=boto3.client("s3"),
            overflow_bucket=env.get("PROMPT_OVERFLOW_BUCKET") or None,
            overflow_prefix=env.get("PROMPT_OVERFLOW_PREFIX", "prompts/"),
            version_writer=LambdaVersionWriter(writer) if writer else None,
        )

    # ---- versions -------------------------------------------------------------------------

    def latest_version_number(self, prompt_id: str) -> int:
        resp = self._ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": _pk(prompt_id), ":v": {"S": "V#"}},
            ProjectionExpression="version",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = resp.get("Items", [])
        return int(items[0]["version"]["N"]) if items else 0

    def create_version(
        self,
        prompt_id: str,
        content: PromptContent,
        *,
        change_note: str = "",
        author: str = "unknown",
        description: str | None = None,
        owner: str | None = None,
        tags: Sequence[str] | None = None,
        only_if_changed: bool = False,
    ) -> tuple[PromptVersion, bool]:
        """Write the next version of ``prompt_id``; returns (version, created).

        With ``only_if_changed`` an unchanged content (same hash as the latest version)
        returns the latest version and writes nothing: this makes sync-at-deploy idempotent.
        """
        from lambdas.runtime.prompt_catalog.templates import validate_content

        check_prompt_id(prompt_id)
        validate_content(content)
        if self.version_writer is not None:
            return self.version_writer.create_version(
                prompt_id, content, change_note=change_note, author=author, description=description, owner=owner,
                tags=tags, only_if_changed=only_if_changed,
            )
        content_json = content.canonical_json()
        content_hash = hashlib.sha256(content_json.encode("utf-8")).hexdigest()
        body: dict[str, Any]
        if len(content_json.encode("utf-8")) > self.inline_limit:
            body = {"content_ref": {"M": self._put_overflow(prompt_id, content_hash, content_json)}}
        else:
            body = {"content_json": {"S": content_json}}
        created_at = _now()
        for attempt in range(MAX_CREATE_ATTEMPTS):
            latest = self.latest_version_number(prompt_id)
            if only_if_changed and latest:
                current = self.get_version(prompt_id, latest)
                if current.content_hash == content_hash:
                    if self._meta_differs(prompt_id, description, owner, tags):
                        self._upsert_meta(prompt_id, latest, description, owner, tags, created_at)
                    return current, False
            number = latest + 1
            item = {
                "pk": _pk(prompt_id),
                "sk": _vsk(number),
                "prompt_id": {"S": prompt_id},
                "version": {"N": str(number)},
                "content_hash": {"S": content_hash},
                "kind": {"S": content.kind},
                "technique": {"S": content.technique},
                "change_note": {"S": change_note[:2000]},
                "author": {"S": author[:512] or "unknown"},
                "created_at": {"S": created_at},
                **body,
            }
            try:
                self._ddb.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")
            except Exception as exc:
                if not _is_conditional_failure(exc):
                    raise
                # Another writer took this number: read the new latest and try the next one.
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
                continue
            self._upsert_meta(prompt_id, number, description, owner, tags, created_at)
            return PromptVersion(prompt_id, number, content, content_hash, item["change_note"]["S"], item["author"]["S"], created_at), True
        raise VersionConflict(f"could not claim a version number for {prompt_id!r} after {MAX_CREATE_ATTEMPTS} attempts")

    def _put_overflow(self, prompt_id: str, content_hash: str, content_json: str) -> dict[str, Any]:
        if not (self._s3 and self.overflow_bucket):
            raise ContentTooLarge(
                [Problem("content", f"over {self.inline_limit} bytes needs the S3 overflow bucket, which is not configured")]
            )
        # Content-addressed key: a retried write lands on the same object, never a different one.
        key = f"{self.overflow_prefix}{prompt_id}/{content_hash}.json"
        self._s3.put_object(Bucket=self.overflow_bucket, Key=key, Body=content_json.encode("utf-8"), ContentType="application/json")
        return {"bucket": {"S": self.overflow_bucket}, "key": {"S": key}}

    def _meta_differs(self, prompt_id: str, description, owner, tags) -> bool:
        try:
            info = self.get_prompt(prompt_id)
        except PromptNotFound:
            return True
        wanted = {"description": description, "owner": owner, "tags": tuple(tags) if tags is not None else None}
        return any(value is not None and getattr(info, name) != value for name, value in wanted.items())

    def _upsert_meta(self, prompt_id: str, number: int, description, owner, tags, now: str) -> None:
        names = {"#u": "updated_at"}
        values: dict[str, Any] = {":now": {"S": now}, ":g": {"S": LIST_PARTITION}, ":id": {"S": prompt_id}}
        sets = ["#u = :now", "created_at = if_not_exists(created_at, :now)", "gsi1pk = :g", "gsi1sk = :id", "prompt_id = :id"]
        for attr, value in (("description", description), ("owner", owner)):
            if value is not None:
                sets.append(f"#{attr} = :{attr}")
                names[f"#{attr}"] = attr
                values[f":{attr}"] = {"S": str(value)[:2000]}
        if tags is not None:
            sets.append("tags = :tags")
            values[":tags"] = {"L": [{"S": str(t)[:128]} for t in list(tags)[:50]]}
        key = {"pk": _pk(prompt_id), "sk": {"S": META}}
        base = "SET " + ", ".join(sets)
        try:
            # latest_version only ever grows, even when writers finish out of order.
            self._ddb.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=base + ", latest_version = :n",
                ConditionExpression="attribute_not_exists(latest_version) OR latest_version < :n",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":n": {"N": str(number)}},
            )
        except Exception as exc:
            if not _is_conditional_failure(exc):
                raise
            self._ddb.update_item(
                TableName=self.table_name, Key=key, UpdateExpression=base, ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    def get_version(self, prompt_id: str, version: int) -> PromptVersion:
        check_prompt_id(prompt_id)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise PromptValidationError(f"must be a positive integer, got {version!r}", "version")
        resp = self._ddb.get_item(TableName=self.table_name, Key={"pk": _pk(prompt_id), "sk": _vsk(version)}, ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            raise VersionNotFound(prompt_id, version)
        return self._version_from_item(item)

    def _version_from_item(self, item: dict[str, Any]) -> PromptVersion:
        if "content_json" in item:
            raw = item["content_json"]["S"]
        else:
            ref = item["content_ref"]["M"]
            if self._s3 is None:
                import boto3

                self._s3 = boto3.client("s3")
            raw = self._s3.get_object(Bucket=ref["bucket"]["S"], Key=ref["key"]["S"])["Body"].read().decode("utf-8")
        if hashlib.sha256(raw.encode("utf-8")).hexdigest() != item["content_hash"]["S"]:
            raise RuntimeError(f"content of {item['pk']['S'][2:]} v{item['version']['N']} does not match its hash")
        return PromptVersion(
            # From the key: writers may update prompt_id (a metadata name too), never the key.
            prompt_id=item["pk"]["S"][2:],
            version=int(item["version"]["N"]),
            content=PromptContent.model_validate_json(raw),
            content_hash=item["content_hash"]["S"],
            change_note=item.get("change_note", {}).get("S", ""),
            author=item.get("author", {}).get("S", ""),
            created_at=item.get("created_at", {}).get("S", ""),
        )

    def list_versions(self, prompt_id: str, *, limit: int = 50, before: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Version summaries, newest first; returns (page, next ``before`` or None)."""
        check_prompt_id(prompt_id)
        limit = max(1, min(int(limit), MAX_PAGE))
        upper = f"V#{(before - 1 if before is not None else 10**10 - 1):010d}"
        resp = self._ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":pk": _pk(prompt_id), ":lo": {"S": "V#"}, ":hi": {"S": upper}},
            ProjectionExpression="version, content_hash, change_note, author, created_at, technique, kind",
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        items = resp.get("Items", [])
        page = [
            {
                "version": int(i["version"]["N"]),
                "content_hash": i["content_hash"]["S"],
                "change_note": i.get("change_note", {}).get("S", ""),
                "author": i.get("author", {}).get("S", ""),
                "created_at": i.get("created_at", {}).get("S", ""),
                "technique": i.get("technique", {}).get("S", ""),
                "kind": i.get("kind", {}).get("S", ""),
            }
            for i in items[:limit]
        ]
        next_before = page[-1]["version"] if len(items) > limit else None
        return page, next_before

    def find_version_by_hash(self, prompt_id: str, content_hash: str) -> int | None:
        """The lowest version of ``prompt_id`` whose content has ``content_hash``, or None."""
        check_prompt_id(prompt_id)
        kwargs: dict[str, Any] = {}
        while True:
            resp = self._ddb.query(
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
                ExpressionAttributeValues={":pk": _pk(prompt_id), ":v": {"S": "V#"}},
                ProjectionExpression="version, content_hash",
                ConsistentRead=True,
                **kwargs,
            )
            for item in resp.get("Items", []):  # ascending: the first match is the lowest version
                if item["content_hash"]["S"] == content_hash:
                    return int(item["version"]["N"])
            if "LastEvaluatedKey" not in resp:
                return None
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def update_metadata(self, prompt_id: str, *, description=None, owner=None, tags=None) -> bool:
        """Write description/owner/tags if they differ from what is stored; returns whether it wrote."""
        if self.version_writer is not None:
            if not self._meta_differs(prompt_id, description, owner, tags):
                return False  # the common case (a sync of unchanged files) needs no invoke
            return self.version_writer.update_metadata(prompt_id, description=description, owner=owner, tags=tags)
        if not self._meta_differs(prompt_id, description, owner, tags):
            return False
        self._upsert_meta(prompt_id, self.latest_version_number(prompt_id), description, owner, tags, _now())
        return True

    # ---- sync-at-deploy state (on the META item) ---------------------------------------------

    def sync_state(self, prompt_id: str) -> dict[str, Any]:
        """What the last sync published: {content_hash, version, aliases: {alias: revision it wrote}}."""
        item = self._ddb.get_item(
            TableName=self.table_name, Key={"pk": _pk(prompt_id), "sk": {"S": META}}, ConsistentRead=True,
            ProjectionExpression="sync_hash, sync_version, sync_aliases",
        ).get("Item") or {}
        if "sync_hash" not in item:
            return {}
        return {
            "content_hash": item["sync_hash"]["S"],
            "version": int(item["sync_version"]["N"]),
            "aliases": {name: int(v["N"]) for name, v in item.get("sync_aliases", {}).get("M", {}).items()},
        }

    def record_sync(self, prompt_id: str, *, content_hash: str, version: int, aliases: dict[str, int]) -> None:
        self._ddb.update_item(
            TableName=self.table_name,
            Key={"pk": _pk(prompt_id), "sk": {"S": META}},
            UpdateExpression="SET sync_hash = :h, sync_version = :v, sync_aliases = :a",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":h": {"S": content_hash}, ":v": {"N": str(version)},
                ":a": {"M": {name: {"N": str(rev)} for name, rev in aliases.items()}},
            },
        )

    # ---- prompts --------------------------------------------------------------------------

    def get_prompt(self, prompt_id: str) -> PromptInfo:
        check_prompt_id(prompt_id)
        item = self._ddb.get_item(TableName=self.table_name, Key={"pk": _pk(prompt_id), "sk": {"S": META}}, ConsistentRead=True).get("Item")
        if not item:
            raise PromptNotFound(prompt_id)
        return self._info_from_item(item)

    @staticmethod
    def _info_from_item(item: dict[str, Any]) -> PromptInfo:
        return PromptInfo(
            prompt_id=item["prompt_id"]["S"],
            description=item.get("description", {}).get("S", ""),
            owner=item.get("owner", {}).get("S", ""),
            tags=tuple(t["S"] for t in item.get("tags", {}).get("L", [])),
            latest_version=int(item.get("latest_version", {}).get("N", "0")),
            created_at=item.get("created_at", {}).get("S", ""),
            updated_at=item.get("updated_at", {}).get("S", ""),
        )

    def list_prompts(self, *, limit: int = 50, after: str | None = None) -> tuple[list[PromptInfo], str | None]:
        """Prompts in id order; returns (page, opaque next token or None).

        A token that this method did not return (malformed, or naming no prompt) raises a
        ``PromptValidationError`` on ``next_token`` instead of answering an empty page.
        """
        limit = max(1, min(int(limit), MAX_PAGE))
        kwargs: dict[str, Any] = {}
        if after is not None:
            last = decode_page_token(after)
            # Prompts are never deleted, so the prompt a real token names still exists.
            exists = self._ddb.get_item(TableName=self.table_name, Key={"pk": _pk(last), "sk": {"S": META}},
                                        ProjectionExpression="pk").get("Item")
            if not exists:
                raise PromptValidationError("is not a token this API returned (it names no prompt)", "next_token")
            kwargs["ExclusiveStartKey"] = {
                "gsi1pk": {"S": LIST_PARTITION}, "gsi1sk": {"S": last}, "pk": _pk(last), "sk": {"S": META},
            }
        resp = self._ddb.query(
            TableName=self.table_name,
            IndexName=LIST_INDEX,
            KeyConditionExpression="gsi1pk = :g",
            ExpressionAttributeValues={":g": {"S": LIST_PARTITION}},
            Limit=limit,
            **kwargs,
        )
        page = [self._info_from_item(i) for i in resp.get("Items", [])]
        token = encode_page_token(page[-1].prompt_id) if resp.get("LastEvaluatedKey") and page else None
        return page, token

    # ---- aliases --------------------------------------------------------------------------

    def get_alias(self, prompt_id: str, alias: str) -> Alias:
        check_prompt_id(prompt_id)
        check_alias_name(alias)
        item = self._ddb.get_item(
            TableName=self.table_name, Key={"pk": _pk(prompt_id), "sk": {"S": f"A#{alias}"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            raise AliasNotFound(prompt_id, alias)
        return self._alias_from_item(prompt_id, alias, item)

    @staticmethod
    def _alias_from_item(prompt_id: str, alias: str, item: dict[str, Any]) -> Alias:
        targets = tuple(
            AliasTarget(version=int(t["M"]["version"]["N"]), weight=int(t["M"]["weight"]["N"])) for t in item["targets"]["L"]
        )
        return Alias(prompt_id, alias, targets, int(item["revision"]["N"]), item.get("updated_at", {}).get("S", ""), item.get("updated_by", {}).get("S", ""))

    def list_aliases(self, prompt_id: str) -> list[Alias]:
        check_prompt_id(prompt_id)
        resp = self._ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
            ExpressionAttributeValues={":pk": _pk(prompt_id), ":a": {"S": "A#"}},
        )
        return [self._alias_from_item(prompt_id, i["sk"]["S"][2:], i) for i in resp.get("Items", [])]

    def move_alias(
        self,
        prompt_id: str,
        alias: str,
        targets: Any,
        *,
        expected_revision: int,
        updated_by: str = "unknown",
    ) -> Alias:
        """Point ``alias`` at ``targets`` if it is still at ``expected_revision`` (0: not yet created).

        A concurrent move in between raises ``AliasConflict`` instead of being overwritten.
        """
        check_prompt_id(prompt_id)
        check_alias_name(alias, for_write=True)
        if isinstance(expected_revision, bool) or not isinstance(expected_revision, int) or expected_revision < 0:
            raise PromptValidationError(f"must be an integer >= 0 (0 creates the alias), got {expected_revision!r}", "expected_revision")
        parsed = parse_targets(targets)
        for target in parsed:
            # Versions are never deleted, so checking before the write cannot go stale.
            resp = self._ddb.get_item(
                TableName=self.table_name, Key={"pk": _pk(prompt_id), "sk": _vsk(target.version)}, ProjectionExpression="version"
            )
            if "Item" not in resp:
                raise PromptValidationError(f"prompt {prompt_id!r} has no version {target.version}", "targets")
        now = _now()
        revision = expected_revision + 1
        updated_by = updated_by[:512] or "unknown"
        values: dict[str, Any] = {
            ":t": {"L": [{"M": {"version": {"N": str(t.version)}, "weight": {"N": str(t.weight)}}} for t in parsed]},
            ":rev": {"N": str(revision)},
            ":now": {"S": now},
            ":by": {"S": updated_by},
        }
        if expected_revision == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "revision = :r"
            values[":r"] = {"N": str(expected_revision)}
        try:
            # UpdateItem of alias-only attributes: callers' IAM lets them name no attribute a version has.
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": _pk(prompt_id), "sk": {"S": f"A#{alias}"}},
                UpdateExpression="SET targets = :t, revision = :rev, updated_at = :now, updated_by = :by",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not _is_conditional_failure(exc):
                raise
            try:
                current: int | None = self.get_alias(prompt_id, alias).revision
            except AliasNotFound:
                current = None
            raise AliasConflict(prompt_id, alias, expected_revision, current) from None
        return Alias(prompt_id, alias, parsed, revision, now, updated_by)

    def resolve_alias(self, prompt_id: str, alias: str) -> Alias:
        """An alias, with ``latest`` resolved to the highest version."""
        if alias == "latest":
            latest = self.latest_version_number(check_prompt_id(prompt_id))
            if not latest:
                raise PromptNotFound(prompt_id)
            return Alias(prompt_id, "latest", (AliasTarget(version=latest, weight=100),), 0, "", "")
        return self.get_alias(prompt_id, alias)
