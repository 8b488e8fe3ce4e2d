"""Job accounting in DynamoDB: each chunk counted once, the reduce fired once.

One table holds, under partition key JOB#<id>:
    sk=JOB          the job: kind, parameters, expected and done counts, state
    sk=CHUNK#<n>    one map chunk: state, attempts, last error, worker id
    sk=PART#<r>     one reduce partition: state and its result summary

A chunk completes with one TransactWriteItems: put the chunk item unless it is
already DONE, and add one to the job's count unless that count is the last.
The completion that would be the last one instead runs a second transaction
that also moves the job to REDUCING, so exactly one completion observes the
count reaching the expected number, and it does so atomically with the count.
A completion that turns out to be a duplicate checks whether the job is
complete but not yet reduced and, if so, asks its caller to trigger again:
the process that counted the last chunk may have died before sending it.
Reduce partitions complete the same way, and the last one finalizes the job.

Failures. A chunk's last failed attempt marks its item FAILED and stores the
number of FAILED chunks on the job item (`failed_chunks`). The job fails when
that number exceeds its `max_failures`, or when every other chunk is done: a
job with a failed chunk cannot give an exact result until it is retried. The
counting transaction succeeds only while the job has no failed chunk, so on a
job with failures every completion takes the slow path, which counts and then
looks at done + failed: whichever of a completion and a failure comes last
sees the job settled and fails it. A job without failures pays nothing.
`reopen_*` undo a failure for `retry`: chunk and partition items go back to
RETRYING and the job to RUNNING or REDUCING.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from worker.settings import (
    JOBS_BY_TIME_INDEX,
    JOBS_BY_TIME_PARTITION_KEY,
    JOBS_BY_TIME_SORT_KEY,
    TABLE_PARTITION_KEY,
    TABLE_SORT_KEY,
    TABLE_TTL_ATTRIBUTE,
)

log = logging.getLogger(__name__)

PENDING = "PENDING"
RUNNING = "RUNNING"
REDUCING = "REDUCING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TERMINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)

CHUNK_DONE = "DONE"
CHUNK_RETRYING = "RETRYING"
CHUNK_FAILED = "FAILED"

# Prefix of the error recorded for a message that SQS itself moved to the
# dead-letter queue: its last holder never came back to say why.
WORKER_LOST = "WorkerLost"

JOB_SK = "JOB"
LISTING = "JOB"
# Transactions on one job item from many workers at once conflict now and
# then; these are retried here because botocore does not retry them.
CONFLICT_ATTEMPTS = 8

_ser = TypeSerializer()
_de = TypeDeserializer()


class UnknownJob(LookupError):
    """A message names a job that has no job item."""


class Outcome(enum.Enum):
    COUNTED = "counted"
    LAST = "last"  # this completion made the count complete: trigger the next phase
    RETRIGGER = "retrigger"  # a duplicate of a complete job whose next phase may be missing
    DUPLICATE = "duplicate"
    DROPPED = "dropped"  # the job was cancelled or failed: do not count


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def chunk_sk(chunk: int) -> str:
    return f"CHUNK#{chunk:06d}"


def part_sk(partition: int) -> str:
    return f"PART#{partition:04d}"


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


def _reasons(e: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in e.response.get("CancellationReasons", [])]


def _is_cancelled(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") == "TransactionCanceledException"


@dataclass(frozen=True)
class _Phase:
    """The job item's attributes that count one phase's completions."""

    counter: str
    last: str  # the counter's value before the last completion
    total: str
    open_states: tuple[str, ...]  # states in which completions count


_MAP = _Phase("done", "expected_minus_one", "expected", (PENDING, RUNNING))
_REDUCE = _Phase("reduced", "partitions_minus_one", "partitions", (REDUCING,))


class Accounting:
    """The jobs table, through an injected low-level DynamoDB client."""

    def __init__(self, *, dynamodb: Any, table: str, record_ttl_days: int = 30) -> None:
        self.db = dynamodb
        self.table = table
        self.record_ttl_s = record_ttl_days * 86400

    # Jobs -----------------------------------------------------------------

    def create_job(
        self,
        *,
        job_id: str,
        job: str,
        params: dict[str, Any],
        partitions: int,
        expected: int,
        bucket: str,
        inputs: int,
        input_bytes: int,
        max_failures: int,
    ) -> None:
        created = now_iso()
        item = {
            TABLE_PARTITION_KEY: job_pk(job_id),
            TABLE_SORT_KEY: JOB_SK,
            JOBS_BY_TIME_PARTITION_KEY: LISTING,
            JOBS_BY_TIME_SORT_KEY: created,
            "job_id": job_id,
            "job": job,
            "params": params,
            "partitions": partitions,
            "partitions_minus_one": partitions - 1,
            "expected": expected,
            "expected_minus_one": expected - 1,
            "done": 0,
            "reduced": 0,
            "state": PENDING if expected else REDUCING,
            "bucket": bucket,
            "inputs": inputs,
            "input_bytes": input_bytes,
            "max_failures": max_failures,
            "updated_at": created,
        }
        self.db.put_item(
            TableName=self.table,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": TABLE_PARTITION_KEY},
        )

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        resp = self.db.get_item(
            TableName=self.table,
            Key=self._key(job_id, JOB_SK),
            ConsistentRead=True,
        )
        return deserialize(resp["Item"]) if "Item" in resp else None

    def list_jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Most recent jobs first."""
        out: list[dict[str, Any]] = []
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=JOBS_BY_TIME_INDEX,
            KeyConditionExpression="#l = :l",
            ExpressionAttributeNames={"#l": JOBS_BY_TIME_PARTITION_KEY},
            ExpressionAttributeValues={":l": {"S": LISTING}},
            ScanIndexForward=False,
        )
        for page in pages:
            out.extend(deserialize(i) for i in page["Items"])
            if len(out) >= limit:
                break
        return out[:limit]

    def set_state(
        self,
        job_id: str,
        state: str,
        *,
        allowed_from: tuple[str, ...],
        error: str | None = None,
    ) -> bool:
        """Move a job to `state` if it is in one of `allowed_from`; False if not."""
        values: dict[str, Any] = {":s": state, ":now": now_iso()}
        names = {"#s": "state"}
        sets = ["#s = :s", "updated_at = :now"]
        if state in TERMINAL_STATES:
            sets.append("finished_at = :now")
        if error is not None:
            sets.append("#e = :e")
            names["#e"] = "error"
            values[":e"] = error
        placeholders = []
        for i, s in enumerate(allowed_from):
            values[f":f{i}"] = s
            placeholders.append(f":f{i}")
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, JOB_SK),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#s IN ({', '.join(placeholders)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # Chunks ----------------------------------------------------------------

    def complete_chunk(
        self, job_id: str, chunk: int, *, attempts: int, worker_id: str, map_seconds: float
    ) -> Outcome:
        """Count a chunk once. See the module docstring for the protocol."""
        item = {
            TABLE_PARTITION_KEY: job_pk(job_id),
            TABLE_SORT_KEY: chunk_sk(chunk),
            "state": CHUNK_DONE,
            "attempts": attempts,
            "worker": worker_id,
            "map_seconds": round(map_seconds, 3),
            "finished_at": now_iso(),
            TABLE_TTL_ATTRIBUTE: int(time.time()) + self.record_ttl_s,
        }
        return self._complete(job_id, item, _MAP, f"chunk {chunk}")

    def record_chunk_failure(
        self,
        job_id: str,
        chunk: int,
        *,
        attempts: int,
        error: str,
        worker_id: str,
        final: bool,
    ) -> bool:
        """Record a failed attempt (worker_id None keeps the recorded one).
        On the final one, fail the job if it has now more failed chunks than
        it allows, or if every other chunk is done. True if the job failed."""
        recorded = self._record_failure(
            job_id,
            chunk_sk(chunk),
            attempts=attempts,
            error=error,
            worker_id=worker_id,
            final=final,
        )
        if not (final and recorded):
            return False
        failed = self.count_chunks(job_id, CHUNK_FAILED)
        # The job may have moved on, or a later failure stored a larger count.
        with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, JOB_SK),
                UpdateExpression="SET failed_chunks = :f, updated_at = :now",
                ConditionExpression=(
                    "#s IN (:pending, :running) AND "
                    "(attribute_not_exists(failed_chunks) OR failed_chunks < :f)"
                ),
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=serialize(
                    {":f": failed, ":now": now_iso(), ":pending": PENDING, ":running": RUNNING}
                ),
            )
        job = self.get_job(job_id)
        return job is not None and self._fail_if_settled(job)

    def settle(self, job_id: str) -> bool:
        """Fail a running job whose chunks are all either done or failed;
        True if it failed now. For readers that want to be sure."""
        job = self.get_job(job_id)
        return job is not None and self._fail_if_settled(job)

    def _fail_if_settled(self, job: dict[str, Any]) -> bool:
        stored = int(job.get("failed_chunks", 0))
        if job["state"] not in (PENDING, RUNNING) or not stored:
            return False
        allowed = int(job.get("max_failures", 0))

        def settled(failed: int) -> bool:
            return failed > allowed or (failed > 0 and job["done"] + failed >= job["expected"])

        if not settled(stored):
            return False
        # Before failing the job, trust the items over the stored count: a
        # failed chunk may have succeeded since, from a second copy of its
        # message. Then the count is corrected, and counting goes on.
        failed = self.count_chunks(job["job_id"], CHUNK_FAILED)
        if failed != stored:
            self._store_failed_count(job["job_id"], failed, was=stored)
            if not settled(failed):
                return False
        if failed > allowed:
            error = f"{failed} chunk(s) failed, more than the {allowed} allowed"
        else:
            error = f"{failed} chunk(s) failed; every other chunk is done"
        return self.set_state(job["job_id"], FAILED, allowed_from=(PENDING, RUNNING), error=error)

    def _store_failed_count(self, job_id: str, failed: int, *, was: int) -> None:
        """Correct a running job's failed-chunk count, unless someone else
        changed it meanwhile (a concurrent failure stores its own count)."""
        values: dict[str, Any] = {":pending": PENDING, ":running": RUNNING, ":was": was}
        if failed:
            values[":f"] = failed
        with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, JOB_SK),
                UpdateExpression="SET failed_chunks = :f" if failed else "REMOVE failed_chunks",
                ConditionExpression="#s IN (:pending, :running) AND failed_chunks = :was",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=serialize(values),
            )

    def note_last_receive(self, job_id: str, sk: str, *, attempts: int, worker_id: str) -> None:
        """Name the worker holding a message on its last receive. Should it
        vanish (killed, out of memory), SQS moves the message to the DLQ with
        no word from any worker; this record is what names the last holder.
        Costs a write only on the last receive, never on a first one."""
        # An item already DONE or FAILED needs no note.
        with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, sk),
                UpdateExpression="SET #s = :retrying, attempts = :a, #w = :w, held_since = :now",
                ConditionExpression="attribute_not_exists(#sk) OR #s = :retrying",
                ExpressionAttributeNames={"#s": "state", "#w": "worker", "#sk": TABLE_SORT_KEY},
                ExpressionAttributeValues=serialize(
                    {
                        ":retrying": CHUNK_RETRYING,
                        ":a": attempts,
                        ":w": worker_id,
                        ":now": now_iso(),
                    }
                ),
            )

    def get_item(self, job_id: str, sk: str) -> dict[str, Any] | None:
        resp = self.db.get_item(
            TableName=self.table, Key=self._key(job_id, sk), ConsistentRead=True
        )
        return deserialize(resp["Item"]) if "Item" in resp else None

    def chunk_items(self, job_id: str, state: str | None = None) -> Iterator[dict[str, Any]]:
        yield from self._query_prefix(job_id, "CHUNK#", state)

    def chunk_numbers(self, job_id: str, state: str) -> set[int]:
        return {
            int(item[TABLE_SORT_KEY].split("#", 1)[1])
            for item in self._query_prefix(job_id, "CHUNK#", state, keys_only=True)
        }

    def count_chunks(self, job_id: str, state: str) -> int:
        return sum(1 for _ in self._query_prefix(job_id, "CHUNK#", state, keys_only=True))

    # Partitions -----------------------------------------------------------------

    def complete_partition(
        self, job_id: str, partition: int, *, summary: dict[str, Any], worker_id: str
    ) -> Outcome:
        item = {
            TABLE_PARTITION_KEY: job_pk(job_id),
            TABLE_SORT_KEY: part_sk(partition),
            "state": CHUNK_DONE,
            "summary": summary,
            "worker": worker_id,
            "finished_at": now_iso(),
            TABLE_TTL_ATTRIBUTE: int(time.time()) + self.record_ttl_s,
        }
        return self._complete(job_id, item, _REDUCE, f"partition {partition}")

    def record_partition_failure(
        self,
        job_id: str,
        partition: int,
        *,
        attempts: int,
        error: str,
        worker_id: str,
        final: bool,
    ) -> bool:
        recorded = self._record_failure(
            job_id,
            part_sk(partition),
            attempts=attempts,
            error=error,
            worker_id=worker_id,
            final=final,
        )
        if not (final and recorded):
            return False
        return self.set_state(
            job_id,
            FAILED,
            allowed_from=(REDUCING,),
            error=f"reduce of partition {partition} failed: {error}",
        )

    def partition_items(self, job_id: str) -> list[dict[str, Any]]:
        return list(self._query_prefix(job_id, "PART#", None))

    # Recovery ----------------------------------------------------------------

    def reopen_items(self, job_id: str, prefix: str) -> list[int]:
        """Put the job's FAILED chunk (prefix CHUNK#) or partition (PART#)
        items back to RETRYING, keeping their attempts and last error;
        returns their numbers."""
        return [
            int(item[TABLE_SORT_KEY].split("#", 1)[1])
            for item in self._query_prefix(job_id, prefix, CHUNK_FAILED, keys_only=True)
            if self.reopen_item(job_id, item[TABLE_SORT_KEY])
        ]

    def reopen_item(self, job_id: str, sk: str) -> bool:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, sk),
                UpdateExpression="SET #s = :retrying",
                ConditionExpression="#s = :failed",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=serialize(
                    {":retrying": CHUNK_RETRYING, ":failed": CHUNK_FAILED}
                ),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def recount_failed_chunks(self, job_id: str) -> int:
        """Store the number of FAILED chunks on a running job (see the module
        docstring), then fail the job if that settles it; returns the number."""
        failed = self.count_chunks(job_id, CHUNK_FAILED)
        update = "SET failed_chunks = :f" if failed else "REMOVE failed_chunks"
        values = {":pending": PENDING, ":running": RUNNING}
        if failed:
            values[":f"] = failed
        with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, JOB_SK),
                UpdateExpression=update,
                ConditionExpression="#s IN (:pending, :running)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=serialize(values),
            )
        if failed:
            self.settle(job_id)
        return failed

    def reopen_job(self, job_id: str, state: str, *, allowed_from: tuple[str, ...]) -> bool:
        """Move a job back to RUNNING or REDUCING for a retry, forgetting its
        error and its failed-chunk count; False if it was not in allowed_from."""
        values = {":s": state, ":now": now_iso()}
        placeholders = []
        for i, s in enumerate(allowed_from):
            values[f":f{i}"] = s
            placeholders.append(f":f{i}")
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, JOB_SK),
                UpdateExpression=(
                    "SET #s = :s, updated_at = :now, retried_at = :now "
                    "REMOVE #e, failed_chunks, finished_at"
                ),
                ConditionExpression=f"#s IN ({', '.join(placeholders)})",
                ExpressionAttributeNames={"#s": "state", "#e": "error"},
                ExpressionAttributeValues=serialize(values),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finalize(self, job_id: str, summary: dict[str, Any], result_prefix: str) -> bool:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, JOB_SK),
                UpdateExpression=(
                    "SET #s = :done, summary = :sum, result_prefix = :rp, "
                    "finished_at = :now, updated_at = :now"
                ),
                ConditionExpression="#s = :reducing",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=serialize(
                    {
                        ":done": SUCCEEDED,
                        ":reducing": REDUCING,
                        ":sum": summary,
                        ":rp": result_prefix,
                        ":now": now_iso(),
                    }
                ),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # Helpers ----------------------------------------------------------------

    def _key(self, job_id: str, sk: str) -> dict[str, Any]:
        return {TABLE_PARTITION_KEY: {"S": job_pk(job_id)}, TABLE_SORT_KEY: {"S": sk}}

    def _put_unless_done(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(#sk) OR #s <> :done",
                "ExpressionAttributeNames": {"#sk": TABLE_SORT_KEY, "#s": "state"},
                "ExpressionAttributeValues": {":done": {"S": CHUNK_DONE}},
            }
        }

    def _complete(self, job_id: str, item: dict[str, Any], phase: _Phase, what: str) -> Outcome:
        """Count one chunk or partition once. See the module docstring."""
        put = self._put_unless_done(item)
        for attempt in self._conflict_attempts():
            try:
                self.db.transact_write_items(TransactItems=[put, self._count(job_id, phase, False)])
                return Outcome.COUNTED
            except ClientError as e:
                if not _is_cancelled(e):
                    raise
                reasons = _reasons(e)
            if reasons[0] == "ConditionalCheckFailed":
                return self._after_duplicate(job_id, phase.counter, phase.total, REDUCING)
            if "TransactionConflict" in reasons:
                attempt.conflict()
                continue
            job = self.get_job(job_id)
            if job is None:
                raise UnknownJob(f"job {job_id} has no job item")
            if job["state"] not in phase.open_states:
                return Outcome.DROPPED
            if (
                phase is _MAP
                and job["done"] < job["expected_minus_one"]
                and job.get("failed_chunks")
            ):
                if self._count_with_failures(job_id, put):
                    return Outcome.COUNTED
                attempt.conflict()
                continue
            if job[phase.counter] != job[phase.last]:
                continue
            try:
                self.db.transact_write_items(TransactItems=[put, self._count(job_id, phase, True)])
                return Outcome.LAST
            except ClientError as e:
                if not _is_cancelled(e):
                    raise
                attempt.conflict()
        raise TransientAccountingError(f"job {job_id} {what}: too many conflicts")

    def _count(self, job_id: str, phase: _Phase, last: bool) -> dict[str, Any]:
        """Add one to the phase's counter: below the last value normally; at
        exactly the last value (and moving the job on) for the completing one."""
        names = {"#c": phase.counter, "#last": phase.last, "#s": "state"}
        values: dict[str, Any] = {":one": 1, ":now": now_iso(), ":reducing": REDUCING}
        if phase is _MAP:
            values.update({":pending": PENDING, ":running": RUNNING})
            allowed = "#s IN (:pending, :running)"
            next_state = ":reducing" if last else ":running"
        else:
            allowed = "#s = :reducing"
            next_state = ":reducing"
        compare = "#c = #last" if last else "#c < #last"
        if phase is _MAP and not last:
            # A job with failed chunks counts on the slow path, which also
            # looks at whether the job has settled (see the module docstring).
            compare += " AND attribute_not_exists(failed_chunks)"
        extra = ", reduce_started_at = :now" if last and phase is _MAP else ""
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(job_id, JOB_SK),
                "UpdateExpression": f"ADD #c :one SET #s = {next_state}, updated_at = :now{extra}",
                "ConditionExpression": f"{allowed} AND {compare}",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }

    def _count_with_failures(self, job_id: str, put: dict[str, Any]) -> bool:
        """Count a chunk of a job that has failed chunks, then fail the job if
        that leaves nothing but failures. False if the transaction did not go
        through: the caller's next attempt finds out why (a duplicate, the
        last chunk, a conflict)."""
        update = {
            "Update": {
                "TableName": self.table,
                "Key": self._key(job_id, JOB_SK),
                "UpdateExpression": "ADD done :one SET #s = :running, updated_at = :now",
                "ConditionExpression": "#s IN (:pending, :running) AND done < expected_minus_one",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": serialize(
                    {":one": 1, ":now": now_iso(), ":pending": PENDING, ":running": RUNNING}
                ),
            }
        }
        try:
            self.db.transact_write_items(TransactItems=[put, update])
        except ClientError as e:
            if not _is_cancelled(e):
                raise
            return False
        job = self.get_job(job_id)
        if job is not None:
            self._fail_if_settled(job)
        return True

    def _after_duplicate(self, job_id: str, counter: str, total: str, waiting: str) -> Outcome:
        job = self.get_job(job_id)
        if job and job["state"] == waiting and job[counter] >= job[total]:
            return Outcome.RETRIGGER
        return Outcome.DUPLICATE

    def _record_failure(
        self,
        job_id: str,
        sk: str,
        *,
        attempts: int,
        error: str,
        worker_id: str | None,
        final: bool,
    ) -> bool:
        """False if the item is already DONE (a duplicate failed late)."""
        names = {"#s": "state", "#sk": TABLE_SORT_KEY, "#ttl": TABLE_TTL_ATTRIBUTE}
        values: dict[str, Any] = {
            ":s": CHUNK_FAILED if final else CHUNK_RETRYING,
            ":a": attempts,
            ":e": error[:1000],
            ":now": now_iso(),
            ":ttl": int(time.time()) + self.record_ttl_s,
            ":done": CHUNK_DONE,
        }
        sets = "SET #s = :s, attempts = :a, last_error = :e, failed_at = :now, #ttl = :ttl"
        if worker_id is not None:
            sets += ", #w = :w"
            names["#w"] = "worker"
            values[":w"] = worker_id
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(job_id, sk),
                UpdateExpression=sets,
                ConditionExpression="attribute_not_exists(#sk) OR #s <> :done",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            log.info("job %s %s already done; failure not recorded", job_id, sk)
            return False
        return True

    def _query_prefix(
        self, job_id: str, prefix: str, state: str | None, keys_only: bool = False
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": TABLE_PARTITION_KEY, "#sk": TABLE_SORT_KEY},
            "ExpressionAttributeValues": {":pk": {"S": job_pk(job_id)}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        if state is not None:
            kwargs["FilterExpression"] = "#s = :state"
            kwargs["ExpressionAttributeNames"]["#s"] = "state"
            kwargs["ExpressionAttributeValues"][":state"] = {"S": state}
        if keys_only:
            kwargs["ProjectionExpression"] = "#sk"
        for page in self.db.get_paginator("query").paginate(**kwargs):
            for item in page["Items"]:
                yield deserialize(item)

    @staticmethod
    def _conflict_attempts() -> Iterator[_Attempt]:
        for n in range(CONFLICT_ATTEMPTS):
            yield _Attempt(n)


class TransientAccountingError(RuntimeError):
    """Accounting could not complete now; the message will be redelivered."""


class _Attempt:
    def __init__(self, n: int) -> None:
        self.n = n

    def conflict(self) -> None:
        time.sleep(random.uniform(0, 0.05 * 2**self.n))
