"""The jobs table in DynamoDB: one partition per job, the job item and its
chunk and partition items, read and written through a low-level client.

    pk=JOB#<id>  sk=JOB          the job (model.JobRecord)
                 sk=CHUNK#<n>    a map chunk (model.ItemRecord)
                 sk=PART#<r>     a reduce partition

Only the ledger package uses this module; everything else asks the ledger.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from worker import names
from worker.ledger.model import JOB_SK, ItemKey, ItemRecord, ItemState, JobRecord, Phase

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Transactions on one job item from many workers at once conflict now and
# then; they are retried here because botocore does not retry them.
CONFLICT_ATTEMPTS = 8

_ser = TypeSerializer()
_de = TypeDeserializer()


class TransientLedgerError(RuntimeError):
    """The ledger could not complete a write now; the message will be
    redelivered and the write tried again."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def _to_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_to_plain(v) for v in value]
    return value


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_to_dynamo(v)) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _to_plain(_de.deserialize(v)) for k, v in item.items()}


# Why an action of a cancelled transaction may fail that another try can
# change: a condition (the item moved on), a concurrent write, throttling.
RETRYABLE_REASONS = frozenset(
    {
        "None",
        "ConditionalCheckFailed",
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)


class LedgerWriteRefused(ValueError):
    """A write the table refuses as such (an item it does not take): no
    other try will succeed, and saying so beats a run of retries."""


def cancellation_reasons(e: ClientError) -> list[str] | None:
    """The per-item reasons of a cancelled transaction; None for any other
    error. Raises LedgerWriteRefused for a reason no retry can change."""
    if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons: list[dict[str, Any]] = e.response.get("CancellationReasons", [])  # type: ignore[assignment]
    for r in reasons:
        if r.get("Code", "None") not in RETRYABLE_REASONS:
            raise LedgerWriteRefused(f"{r.get('Code')}: {r.get('Message', '')}") from e
    return [r.get("Code", "None") for r in reasons]


def backoff(attempt: int) -> None:
    """Wait a little before another try at a conflicting write."""
    time.sleep(random.uniform(0, 0.05 * 2**attempt))


def placeholders(prefix: str, values: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """`:p0, :p1` and their values, for an `IN (...)` condition."""
    names_ = [f":{prefix}{i}" for i in range(len(values))]
    return ", ".join(names_), dict(zip(names_, values, strict=True))


class Table:
    """Reads and writes of the jobs table. Writes that carry a condition
    return False when the condition does not hold."""

    def __init__(self, *, dynamodb: DynamoDBClient, name: str, record_ttl_days: int) -> None:
        self.db = dynamodb
        self.name = name
        self.record_ttl_s = record_ttl_days * 86400

    def key(self, job_id: str, sk: str) -> dict[str, Any]:
        return {names.TABLE_PARTITION_KEY: {"S": job_pk(job_id)}, names.TABLE_SORT_KEY: {"S": sk}}

    def expires_at(self) -> int:
        return int(time.time()) + self.record_ttl_s

    def get_job(self, job_id: str) -> JobRecord | None:
        item = self.get(job_id, JOB_SK)
        return None if item is None else JobRecord.from_item(item)

    def get_item(self, job_id: str, key: ItemKey) -> ItemRecord | None:
        item = self.get(job_id, key.sk)
        return None if item is None else ItemRecord.from_item(item, names.TABLE_SORT_KEY)

    def get(self, job_id: str, sk: str) -> dict[str, Any] | None:
        resp = self.db.get_item(TableName=self.name, Key=self.key(job_id, sk), ConsistentRead=True)
        return deserialize(resp["Item"]) if "Item" in resp else None

    def put(self, item: dict[str, Any], *, condition: str, attribute_names: dict[str, str]) -> bool:
        try:
            self.db.put_item(
                TableName=self.name,
                Item=serialize(item),
                ConditionExpression=condition,
                ExpressionAttributeNames=attribute_names,
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def update(
        self,
        job_id: str,
        sk: str,
        *,
        update: str,
        condition: str,
        attribute_names: dict[str, str],
        values: dict[str, Any] | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {}
        if values:
            kwargs["ExpressionAttributeValues"] = serialize(values)
        try:
            self.db.update_item(
                TableName=self.name,
                Key=self.key(job_id, sk),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=attribute_names,
                **kwargs,
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def transact(self, actions: list[dict[str, Any]]) -> list[str] | None:
        """Run a TransactWriteItems; None if it went through, else the
        per-action cancellation reasons."""
        try:
            self.db.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
        except ClientError as e:
            reasons = cancellation_reasons(e)
            if reasons is None:
                raise
            return reasons
        return None

    def items(
        self,
        job_id: str,
        phase: Phase,
        state: ItemState | None = None,
        *,
        step: int = 0,
        keys_only: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """A job's chunk or partition items of one step, in key order,
        optionally only those in `state`; `keys_only` reads the sort keys
        alone."""
        attribute_names = {"#pk": names.TABLE_PARTITION_KEY, "#sk": names.TABLE_SORT_KEY}
        values: dict[str, Any] = {
            ":pk": {"S": job_pk(job_id)},
            ":prefix": {"S": ItemKey.prefix_of(phase, step)},
        }
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": attribute_names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if state is not None:
            kwargs["FilterExpression"] = "#s = :state"
            attribute_names["#s"] = "state"
            values[":state"] = {"S": state.value}
        if keys_only:
            kwargs["ProjectionExpression"] = "#sk"
        for page in self.db.get_paginator("query").paginate(**kwargs):
            for item in page["Items"]:
                yield deserialize(item)

    def item_keys(
        self, job_id: str, phase: Phase, state: ItemState, *, step: int = 0
    ) -> list[ItemKey]:
        return [
            ItemKey.parse(i[names.TABLE_SORT_KEY])
            for i in self.items(job_id, phase, state, step=step, keys_only=True)
        ]

    def item_records(
        self, job_id: str, phase: Phase, state: ItemState | None = None, *, step: int = 0
    ) -> list[ItemRecord]:
        return [
            ItemRecord.from_item(i, names.TABLE_SORT_KEY)
            for i in self.items(job_id, phase, state, step=step)
        ]

    def jobs_by_time(self, limit: int) -> list[JobRecord]:
        """Most recent jobs first."""
        out: list[JobRecord] = []
        pages = self.db.get_paginator("query").paginate(
            TableName=self.name,
            IndexName=names.JOBS_BY_TIME_INDEX,
            KeyConditionExpression="#l = :l",
            ExpressionAttributeNames={"#l": names.JOBS_BY_TIME_PARTITION_KEY},
            ExpressionAttributeValues={":l": {"S": names.JOBS_LISTING}},
            ScanIndexForward=False,
        )
        for page in pages:
            out.extend(JobRecord.from_item(deserialize(i)) for i in page["Items"])
            if len(out) >= limit:
                break
        return out[:limit]
