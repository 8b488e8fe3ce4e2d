"""The job ledger: the only owner of job and item state in DynamoDB.

`Ledger` is what a worker needs at run time: read a job, count a completion
once (completion.py), record a failure (failures.py), finalize a job. The
operations only `submit` performs (create, list, cancel, retry, record lost
work) are in `worker.ledger.admin`. States, transitions and keys are in
`worker.ledger.model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker.ledger.completion import Completion, Completions, Outcome
from worker.ledger.failures import WORKER_LOST, Failures
from worker.ledger.model import (
    ItemKey,
    ItemRecord,
    ItemState,
    JobRecord,
    JobState,
    Phase,
    UnknownJob,
    Work,
)
from worker.ledger.table import LedgerWriteRefused, Table, TransientLedgerError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "WORKER_LOST",
    "Completion",
    "ItemKey",
    "ItemRecord",
    "ItemState",
    "JobRecord",
    "JobState",
    "Ledger",
    "LedgerWriteRefused",
    "Outcome",
    "Phase",
    "TransientLedgerError",
    "UnknownJob",
    "Work",
]

# Chunk and partition items expire by DynamoDB's TTL this long after their
# last write; the job item itself is kept (it is the job's history).
ITEM_TTL_DAYS = 30


class Ledger:
    """The jobs table, through an injected low-level DynamoDB client."""

    def __init__(self, *, dynamodb: DynamoDBClient, table: str) -> None:
        self.table = Table(dynamodb=dynamodb, name=table, record_ttl_days=ITEM_TTL_DAYS)
        self.failures = Failures(self.table)
        self.completions = Completions(self.table, self.failures)

    def job(self, job_id: str) -> JobRecord | None:
        return self.table.get_job(job_id)

    def complete(self, job_id: str, key: ItemKey, **fields: Any) -> Outcome:
        """Count a chunk or partition once (see completion.py)."""
        return self.completions.complete(job_id, key, **fields).outcome

    def completion(
        self, job_id: str, key: ItemKey, *, likely_last: bool = False, **fields: Any
    ) -> Completion:
        """`complete`, with the job item if counting read it, and trying the
        last completion first when the caller knows it is `likely_last`."""
        return self.completions.complete(job_id, key, likely_last=likely_last, **fields)

    def record_failure(
        self,
        job_id: str,
        key: ItemKey,
        *,
        attempts: int,
        error: str,
        worker_id: str | None,
        final: bool,
    ) -> bool:
        """Record a failed attempt; True if the job failed now (see failures.py)."""
        return self.failures.record(
            job_id, key, attempts=attempts, error=error, worker_id=worker_id, final=final
        )

    def note_last_receive(
        self, job_id: str, key: ItemKey, *, attempts: int, worker_id: str
    ) -> None:
        self.failures.note_last_receive(job_id, key, attempts=attempts, worker_id=worker_id)

    def summaries(self, job_id: str, step: int = 0) -> list[dict[str, Any]]:
        """The summaries of a step's reduced partitions, in partition order."""
        return [
            r.summary
            for r in self.table.item_records(job_id, Phase.REDUCE, ItemState.DONE, step=step)
            if r.summary is not None
        ]

    def finalize(self, job_id: str, summary: dict[str, Any], result_prefix: str) -> bool:
        return self.completions.finalize(job_id, summary, result_prefix)

    def advance(self, job_id: str, *, from_step: int, chunks: int, partitions: int) -> bool:
        """Move a job whose step `from_step` is wholly reduced to its next
        step, of `chunks` chunks and `partitions` partitions; False if it is
        not there (moved on already, or stopped). See completion.py."""
        return self.completions.advance(
            job_id, from_step=from_step, chunks=chunks, partitions=partitions
        )
