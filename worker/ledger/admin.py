"""What `submit` does to the ledger, and the worker never does: create and
list jobs, cancel one, plan and open a retry, record work lost with its
workers.

A retry resumes a failed job where it stopped, in the step it stopped in.
In its map phase every chunk that is not DONE is sent again (the workers
dropped the failed job's other messages unread); in its reduce phase every
partition that is not DONE.
Before anything is sent, the FAILED items go back to RETRYING and the job
back to RUNNING or REDUCING, so a worker that receives a re-sent message
finds the job open. On a job still under way that tolerates failures
(`max_failures`), only its FAILED chunks are sent again. A job whose every
partition is done but that was never finalized (or moved to its next
step) needs no message at all: `RetryPlan.finalize_only`, and the caller
does what its last reducer would have done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker import names
from worker.ledger import Ledger
from worker.ledger.failures import WORKER_LOST
from worker.ledger.model import (
    JOB_SK,
    WORK_TALLIED,
    ItemKey,
    ItemRecord,
    ItemState,
    JobRecord,
    JobState,
    Phase,
    UnknownJob,
    sources,
)
from worker.ledger.table import job_pk, now_iso, placeholders


class JobStateError(RuntimeError):
    """The job is in no state for what was asked."""


@dataclass(frozen=True)
class RetryPlan:
    job: JobRecord
    phase: Phase
    to_state: JobState
    numbers: list[int]  # chunks or partitions of the job's step to send again

    @property
    def finalize_only(self) -> bool:
        """Every partition of the step is done: the job needs only what its
        last reducer would have done next (finalize, or start the next step)."""
        return self.phase is Phase.REDUCE and not self.numbers


def lost_work_error(receives: int, previous: str | None = None) -> str:
    """The error recorded for a message SQS moved to a dead-letter queue by
    itself, after `receives` receives whose workers all vanished."""
    error = (
        f"{WORKER_LOST}: no result after {receives} receive(s); the workers "
        "holding it stopped without a word (killed, out of memory, or stopped past "
        "their stop timeout)"
    )
    if previous and not previous.startswith(WORKER_LOST):
        error += f"; before that: {previous}"
    return error


class Admin(Ledger):
    # Jobs -------------------------------------------------------------------

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
        step_partitions: list[int] | None = None,
        chunk_size_bytes: int = 0,
    ) -> None:
        """Create a job in its first step; `step_partitions` gives each
        step's partitions (default: one step of `partitions`)."""
        created = now_iso()
        step_partitions = step_partitions or [partitions]
        item = {
            names.TABLE_PARTITION_KEY: job_pk(job_id),
            names.TABLE_SORT_KEY: JOB_SK,
            names.JOBS_BY_TIME_PARTITION_KEY: names.JOBS_LISTING,
            names.JOBS_BY_TIME_SORT_KEY: created,
            "job_id": job_id,
            "job": job,
            "params": params,
            "partitions": partitions,
            "partitions_minus_one": partitions - 1,
            "expected": expected,
            "expected_minus_one": expected - 1,
            "done": 0,
            "reduced": 0,
            # A job of no chunks goes straight to its reduce.
            "state": (JobState.PENDING if expected else JobState.REDUCING).value,
            "bucket": bucket,
            "inputs": inputs,
            "input_bytes": input_bytes,
            "max_failures": max_failures,
            "step": 0,
            "steps": len(step_partitions),
            "step_partitions": step_partitions,
            "chunk_size_bytes": chunk_size_bytes,
            "updated_at": created,
            # What the workers spend, summed as they complete (model.Work).
            WORK_TALLIED: True,
            **{
                name: 0
                for phase in Phase
                for name in (phase.counting.work_seconds, phase.counting.work_items)
            },
        }
        if not self.table.put(
            item,
            condition="attribute_not_exists(#pk)",
            attribute_names={"#pk": names.TABLE_PARTITION_KEY},
        ):
            raise JobStateError(f"job {job_id} exists already")

    def require(self, job_id: str) -> JobRecord:
        job = self.job(job_id)
        if job is None:
            raise UnknownJob(f"no job {job_id!r} (see `python -m submit jobs`)")
        return job

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        """Most recent jobs first."""
        return self.table.jobs_by_time(limit)

    def items(
        self, job_id: str, phase: Phase, state: ItemState | None = None, *, step: int = 0
    ) -> list[ItemRecord]:
        return self.table.item_records(job_id, phase, state, step=step)

    def item(self, job_id: str, key: ItemKey) -> ItemRecord | None:
        return self.table.get_item(job_id, key)

    def cancel(self, job_id: str) -> JobRecord:
        """Stop a job: workers drop its remaining messages unread. Returns
        the job as it was."""
        job = self.require(job_id)
        if job.state is JobState.CANCELLED:
            return job
        if job.state not in sources(JobState.CANCELLED):
            raise JobStateError(f"job {job_id} already {job.state.lower()}")
        if not self._move(job_id, JobState.CANCELLED, from_states=sources(JobState.CANCELLED)):
            raise JobStateError(f"job {job_id} changed state while being cancelled; try again")
        return job

    def _move(self, job_id: str, to: JobState, *, from_states: tuple[JobState, ...]) -> bool:
        in_, values = placeholders("from", tuple(from_states))
        values.update({":s": to.value, ":now": now_iso()})
        update = "SET #s = :s, updated_at = :now"
        if to.terminal:
            update += ", finished_at = :now"
        return self.table.update(
            job_id,
            JOB_SK,
            update=update,
            condition=f"#s IN ({in_})",
            attribute_names={"#s": "state"},
            values=values,
        )

    # Retry ------------------------------------------------------------------

    def plan_retry(self, job_id: str) -> RetryPlan:
        """What a retry of the job would send again; raises JobStateError
        when there is nothing to retry."""
        job = self.require(job_id)
        if job.state is JobState.SUCCEEDED:
            raise JobStateError(f"job {job_id} succeeded; there is nothing to retry")
        if job.state.final:
            raise JobStateError(f"job {job_id} was {job.state.lower()}; submit it again instead")
        if job.state is not JobState.FAILED:
            # Still under way, with failures tolerated: only the failed
            # chunks; the others are on their way.
            failed = (
                self.table.item_keys(job_id, Phase.MAP, ItemState.FAILED, step=job.step)
                if job.state in Phase.MAP.counting.open_states
                else []
            )
            if not failed:
                raise JobStateError(f"job {job_id} is {job.state} and nothing of it failed")
            return RetryPlan(job, Phase.MAP, JobState.RUNNING, [k.number for k in failed])
        phase = job.phase
        done = {
            k.number for k in self.table.item_keys(job_id, phase, ItemState.DONE, step=job.step)
        }
        to_state = phase.counting.open_states[-1]
        return RetryPlan(
            job, phase, to_state, [n for n in range(job.needed(phase)) if n not in done]
        )

    def open_retry(self, plan: RetryPlan) -> None:
        """Put the plan's FAILED items back to RETRYING and the job back to
        the plan's state, forgetting its error; then, on a job that was still
        under way, count its failures again (one may have come meanwhile)."""
        job_id = plan.job.job_id
        for key in self.table.item_keys(job_id, plan.phase, ItemState.FAILED, step=plan.job.step):
            self.reopen_item(job_id, key)
        in_, values = placeholders("from", (plan.job.state,))
        values.update({":s": plan.to_state.value, ":now": now_iso()})
        reopened = self.table.update(
            job_id,
            JOB_SK,
            update=(
                "SET #s = :s, updated_at = :now, retried_at = :now "
                "REMOVE #e, failed_chunks, finished_at"
            ),
            condition=f"#s IN ({in_})",
            attribute_names={"#s": "state", "#e": "error"},
            values=values,
        )
        if not reopened:
            raise JobStateError(f"job {job_id} changed state while being retried; try again")
        if plan.job.state is not JobState.FAILED:
            self.failures.recount(job_id)

    def reopen_item(self, job_id: str, key: ItemKey) -> bool:
        """A FAILED item back to RETRYING, keeping its attempts and last error."""
        return self.table.update(
            job_id,
            key.sk,
            update="SET #s = :retrying",
            condition="#s = :failed",
            attribute_names={"#s": "state"},
            values={":retrying": ItemState.RETRYING.value, ":failed": ItemState.FAILED.value},
        )

    def reopen_sent_back(self, job_id: str, keys: list[ItemKey]) -> None:
        """Items whose message is sent back to a job still under way: back to
        RETRYING, so that the job's failure count no longer includes them."""
        job = self.job(job_id)
        if job is None or not job.state.takes_work:
            return
        for key in keys:
            self.reopen_item(job_id, key)
        self.failures.recount(job_id)

    # Lost work --------------------------------------------------------------

    def record_lost(self, job_id: str, key: ItemKey, *, receives: int) -> tuple[str, bool]:
        """Record a message that SQS moved to a dead-letter queue by itself
        as a failed item, which fails the job as a worker would have.
        Returns the reason and whether the job failed now. Nothing is
        written for a job that has ended for good, or for an item already
        DONE (a duplicate whose twin finished) or FAILED (recorded before)."""
        item = self.item(job_id, key)
        error = lost_work_error(receives, item.last_error if item else None)
        job = self.job(job_id)
        if job is None or job.state.final:
            return error, False
        if item is not None and item.state in (ItemState.DONE, ItemState.FAILED):
            return error, False
        # worker_id None keeps the holder named on the last receive.
        failed = self.failures.record(
            job_id, key, attempts=receives, error=error, worker_id=None, final=True
        )
        return error, failed
