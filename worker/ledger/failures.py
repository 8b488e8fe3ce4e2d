"""Failures: attempts recorded on their items, and the job failed once its
failures settle it.

A failed attempt marks its item RETRYING (another receive will come) or, on
the last one, FAILED, with the attempt count, the error and the worker. A
failed reduce partition fails its job at once. Failed chunks are counted on
the job item (`failed_chunks`), by one writer only (`recount`), from the
items themselves, with a compare-and-set on the stored count so that
concurrent writers never store a stale number. The job fails when that
number exceeds its `max_failures`, or when every other chunk is done: a job
with a failed chunk cannot give an exact result until it is retried.
Whichever of a job's last completion and its last failure comes last sees
the job settled and fails it (completion.py has the completion's side).
Before failing a job the count is taken again from the items: a failed
chunk may have succeeded since, from a second copy of its message.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from worker import names
from worker.ledger.model import JOB_SK, ItemKey, ItemState, JobRecord, JobState, Phase, sources
from worker.ledger.table import (
    CONFLICT_ATTEMPTS,
    Table,
    TransientLedgerError,
    backoff,
    now_iso,
    placeholders,
)

log = logging.getLogger(__name__)

# Prefix of the error recorded for a message that SQS itself moved to a
# dead-letter queue: its last holder never came back to say why.
WORKER_LOST = "WorkerLost"


def settled(job: JobRecord) -> bool:
    """The job's stored failures decide it: too many, or nothing else left."""
    failed = job.failed_chunks
    return failed > job.max_failures or (failed > 0 and job.done + failed >= job.expected)


class Failures:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(
        self,
        job_id: str,
        key: ItemKey,
        *,
        attempts: int,
        error: str,
        worker_id: str | None,
        final: bool,
    ) -> bool:
        """Record a failed attempt (worker_id None keeps the recorded
        holder). On the final one, fail the job if that settles it; True if
        the job failed now. An item already DONE is left alone: a duplicate
        failed after its twin succeeded."""
        if not self._mark(
            job_id, key, attempts=attempts, error=error, worker_id=worker_id, final=final
        ):
            log.info("job %s %s already done; failure not recorded", job_id, key)
            return False
        if not final:
            return False
        if key.phase is Phase.REDUCE:
            return self.fail(job_id, f"reduce of {key} failed: {error}", phase=Phase.REDUCE)
        return self.recount(job_id)

    def _mark(
        self,
        job_id: str,
        key: ItemKey,
        *,
        attempts: int,
        error: str,
        worker_id: str | None,
        final: bool,
    ) -> bool:
        attribute_names = {
            "#s": "state",
            "#sk": names.TABLE_SORT_KEY,
            "#ttl": names.TABLE_TTL_ATTRIBUTE,
        }
        values = {
            ":s": (ItemState.FAILED if final else ItemState.RETRYING).value,
            ":a": attempts,
            ":e": error[:1000],
            ":now": now_iso(),
            ":ttl": self.table.expires_at(),
            ":done": ItemState.DONE.value,
        }
        update = "SET #s = :s, attempts = :a, last_error = :e, failed_at = :now, #ttl = :ttl"
        if worker_id is not None:
            update += ", #w = :w"
            attribute_names["#w"] = "worker"
            values[":w"] = worker_id
        return self.table.update(
            job_id,
            key.sk,
            update=update,
            condition="attribute_not_exists(#sk) OR #s <> :done",
            attribute_names=attribute_names,
            values=values,
        )

    def note_last_receive(
        self, job_id: str, key: ItemKey, *, attempts: int, worker_id: str
    ) -> None:
        """Name the worker holding a message on its last receive. Should it
        vanish (killed, out of memory), SQS moves the message to the DLQ with
        no word from any worker; this record is what names the last holder.
        Costs a write only on the last receive, never on a first one. An item
        already DONE or FAILED needs no note."""
        self.table.update(
            job_id,
            key.sk,
            update="SET #s = :retrying, attempts = :a, #w = :w, held_since = :now",
            condition="attribute_not_exists(#sk) OR #s = :retrying",
            attribute_names={"#s": "state", "#w": "worker", "#sk": names.TABLE_SORT_KEY},
            values={
                ":retrying": ItemState.RETRYING.value,
                ":a": attempts,
                ":w": worker_id,
                ":now": now_iso(),
            },
        )

    def settle(self, job_id: str) -> bool:
        """Fail a running job that its stored failures settle, after checking
        them against its items; True if it failed now. Cheap when the stored
        count settles nothing: one read."""
        job = self.table.get_job(job_id)
        if job is None or job.state not in Phase.MAP.counting.open_states or not settled(job):
            return False
        return self.recount(job_id)

    def recount(self, job_id: str) -> bool:
        """Store the number of FAILED chunks of a running job, counted from
        its items, then fail the job if that settles it; True if it failed
        now. The one writer of `failed_chunks`."""
        job = self._store_count(job_id)
        if job is None or job.state not in Phase.MAP.counting.open_states or not settled(job):
            return False
        allowed = job.max_failures
        failed = job.failed_chunks
        if failed > allowed:
            error = f"{failed} chunk(s) failed, more than the {allowed} allowed"
        else:
            error = f"{failed} chunk(s) failed; every other chunk is done"
        return self.fail(job_id, error, phase=Phase.MAP)

    def _store_count(self, job_id: str) -> JobRecord | None:
        open_states = Phase.MAP.counting.open_states
        for attempt in range(CONFLICT_ATTEMPTS):
            job = self.table.get_job(job_id)
            if job is None or job.state not in open_states:
                return job
            failed = len(self.table.item_keys(job_id, Phase.MAP, ItemState.FAILED, step=job.step))
            if failed == job.failed_chunks:
                return job
            open_in, values = placeholders("open", tuple(open_states))
            if job.failed_chunks:
                was = "failed_chunks = :was"
                values[":was"] = job.failed_chunks
            else:
                was = "attribute_not_exists(failed_chunks)"
            if failed:
                values[":f"] = failed
            stored = self.table.update(
                job_id,
                JOB_SK,
                update="SET failed_chunks = :f" if failed else "REMOVE failed_chunks",
                condition=f"#s IN ({open_in}) AND {was}",
                attribute_names={"#s": "state"},
                values=values,
            )
            if stored:
                return replace(job, failed_chunks=failed)
            backoff(attempt)
        raise TransientLedgerError(f"job {job_id}: too many concurrent failure counts")

    def fail(self, job_id: str, error: str, *, phase: Phase) -> bool:
        """Move a job that is in `phase` to FAILED with `error`; False if it
        is not there any more."""
        allowed = tuple(s for s in phase.counting.open_states if s in sources(JobState.FAILED))
        open_in, values = placeholders("from", allowed)
        values.update({":s": JobState.FAILED.value, ":now": now_iso(), ":e": error})
        failed = self.table.update(
            job_id,
            JOB_SK,
            update="SET #s = :s, updated_at = :now, finished_at = :now, #e = :e",
            condition=f"#s IN ({open_in})",
            attribute_names={"#s": "state", "#e": "error"},
            values=values,
        )
        if failed:
            log.warning("job %s: failed: %s", job_id, error)
        return failed
