"""Counting completions: each chunk (and each partition) counted once, the
next phase started once.

A chunk completes with one TransactWriteItems: put its item DONE unless it
already is, and add one to the job's counter (`done`) unless the counter is
at its last value. The completion that would be the last one runs a second
transaction instead, which also moves the job to its next state (REDUCING),
so exactly one completion observes the count reaching the number needed,
atomically with the count. A completion that turns out to be a duplicate
looks at the job: complete but not moved on past that phase means the
process that counted the last chunk may have died before starting the next
phase, so the caller is asked to start it again (RETRIGGER). Reduce
partitions complete the same way, counted in `reduced`; the last one's
caller finalizes the job (SUCCEEDED, with its summary) or, in a job of
several steps, moves it to its next step (`advance`) and sends that step's
chunks.

Every count is conditioned on the job's step being the item's. A message of
a step the job has left is a duplicate; one of a step the job has not
reached yet (its chunks are sent before the job is moved on, when a
retry sends them again) is a transient error, tried again later. A
duplicate of a step's partition that finds the job in the next step with
nothing of it done yet asks its caller to send that step's chunks again
(RETRIGGER): the reducer that moved the job on may have died before it
sent them, and a chunk sent twice is counted once.

The update that counts an item also adds the seconds its worker spent
to the job's running sums (model.Work), in the same transaction, so a
chunk's seconds are summed exactly when it is counted: a job's cost is
read from the job item alone, however many chunks it has.

A job with failed chunks counts differently (see failures.py): the plain
counting transaction holds only while the job has no failed chunk, so on a
job with failures each completion takes the slow path, which counts and then
looks at done + failed, and fails the job once nothing but failures is left.
A job without failures pays nothing for this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from worker import names
from worker.ledger.failures import Failures
from worker.ledger.model import (
    JOB_SK,
    ItemKey,
    ItemState,
    JobRecord,
    JobState,
    Phase,
    UnknownJob,
)
from worker.ledger.table import (
    CONFLICT_ATTEMPTS,
    Table,
    TransientLedgerError,
    backoff,
    job_pk,
    now_iso,
    placeholders,
    serialize,
)

_SAME_STEP = "#step = :step"


class Outcome(enum.Enum):
    COUNTED = "counted"
    LAST = "last"  # this completion made the count complete: start the next phase
    RETRIGGER = "retrigger"  # a duplicate of a complete phase whose next may be missing
    DUPLICATE = "duplicate"
    DROPPED = "dropped"  # the job stopped (cancelled, failed): not counted

    @property
    def starts_next_phase(self) -> bool:
        return self in (Outcome.LAST, Outcome.RETRIGGER)


@dataclass(frozen=True)
class Completion:
    outcome: Outcome
    # The job item as counting read it, if it did: when the outcome starts
    # the next phase, it names that phase's work (its partitions, chunks and
    # step do not change with the count), so the caller need not read it.
    job: JobRecord | None = None


def _add_work(phase: Phase, seconds: float | None, values: dict[str, Any]) -> str:
    """The ADD clauses that sum a counted item's seconds into the job's
    Work (model.Work), with their values put in `values`; none for an item
    that recorded no seconds."""
    if seconds is None:
        return ""
    c = phase.counting
    values[":work_s"] = seconds
    return f", {c.work_seconds} :work_s, {c.work_items} :one"


class Completions:
    def __init__(self, table: Table, failures: Failures) -> None:
        self.table = table
        self.failures = failures

    def complete(
        self, job_id: str, key: ItemKey, *, likely_last: bool = False, **fields: Any
    ) -> Completion:
        """Count one chunk or partition once; `fields` are stored on its item.

        `likely_last` (the caller knows the phase has one item, say a job of
        one partition) tries the last completion's transaction first, which
        saves reading the job and a refused transaction when it is right,
        and costs one refused transaction when it is not."""
        item = {
            names.TABLE_PARTITION_KEY: job_pk(job_id),
            names.TABLE_SORT_KEY: key.sk,
            **fields,
            "state": ItemState.DONE.value,
            "finished_at": now_iso(),
            names.TABLE_TTL_ATTRIBUTE: self.table.expires_at(),
        }
        put = self._put_unless_done(item)
        phase = key.phase
        counting = phase.counting
        seconds = fields.get(counting.seconds_field)
        if (
            likely_last
            and self.table.transact([put, self._count(job_id, key, seconds, last=True)]) is None
        ):
            return Completion(Outcome.LAST)
        for attempt in range(CONFLICT_ATTEMPTS):
            reasons = self.table.transact([put, self._count(job_id, key, seconds, last=False)])
            if reasons is None:
                return Completion(Outcome.COUNTED)
            if reasons[0] == "ConditionalCheckFailed":
                return self._after_duplicate(job_id, key)
            if "TransactionConflict" in reasons:
                backoff(attempt)
                continue
            job = self.table.get_job(job_id)
            if job is None:
                raise UnknownJob(f"job {job_id} has no job item")
            if job.step > key.step:
                return Completion(Outcome.DUPLICATE, job)
            if job.step < key.step:
                raise TransientLedgerError(
                    f"job {job_id} {key}: the job is still in step {job.step + 1}"
                )
            if job.state not in counting.open_states:
                return Completion(Outcome.DROPPED, job)
            if (
                phase is Phase.MAP
                and job.failed_chunks
                and job.counted(phase) < job.needed(phase) - 1
            ):
                if self._count_with_failures(job_id, key, seconds, put):
                    return Completion(Outcome.COUNTED, job)
                backoff(attempt)
                continue
            if job.counted(phase) != job.needed(phase) - 1:
                continue
            if self.table.transact([put, self._count(job_id, key, seconds, last=True)]) is None:
                return Completion(Outcome.LAST, job)
            backoff(attempt)
        raise TransientLedgerError(f"job {job_id} {key}: too many conflicting writes")

    def _put_unless_done(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(#sk) OR #s <> :done",
                "ExpressionAttributeNames": {"#sk": names.TABLE_SORT_KEY, "#s": "state"},
                "ExpressionAttributeValues": {":done": {"S": ItemState.DONE.value}},
            }
        }

    def _count(
        self, job_id: str, key: ItemKey, seconds: float | None, *, last: bool
    ) -> dict[str, Any]:
        """Add one to the phase's counter: below its last value normally; at
        exactly the last value, moving the job on, for the completing one.
        The item's seconds are added to the job's Work with it."""
        phase = key.phase
        c = phase.counting
        open_in, values = placeholders("open", tuple(c.open_states))
        values.update({":one": 1, ":now": now_iso(), ":step": key.step})
        add_work = _add_work(phase, seconds, values)
        # Finalizing a job (its summary, its result) is the caller's step, so
        # the last partition leaves the job REDUCING too.
        values[":next"] = (c.complete_state if last else c.counting_state).value
        condition = f"#s IN ({open_in}) AND {_SAME_STEP} AND " + (
            "#c = #last" if last else "#c < #last"
        )
        if phase is Phase.MAP and not last:
            condition += " AND attribute_not_exists(failed_chunks)"
        extra = ", reduce_started_at = :now" if last and phase is Phase.MAP else ""
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": self.table.key(job_id, JOB_SK),
                "UpdateExpression": (
                    f"ADD #c :one{add_work} SET #s = :next, updated_at = :now{extra}"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {
                    "#c": c.counter,
                    "#last": c.last,
                    "#s": "state",
                    "#step": "step",
                },
                "ExpressionAttributeValues": serialize(values),
            }
        }

    def _count_with_failures(
        self, job_id: str, key: ItemKey, seconds: float | None, put: dict[str, Any]
    ) -> bool:
        """Count a chunk of a job that has failed chunks, then fail the job if
        that leaves nothing but failures. False if the transaction did not go
        through: the caller's next attempt finds out why (a duplicate, the
        last chunk, a conflict)."""
        open_in, values = placeholders("open", tuple(Phase.MAP.counting.open_states))
        values.update(
            {":one": 1, ":now": now_iso(), ":running": JobState.RUNNING.value, ":step": key.step}
        )
        add_work = _add_work(Phase.MAP, seconds, values)
        update = {
            "Update": {
                "TableName": self.table.name,
                "Key": self.table.key(job_id, JOB_SK),
                "UpdateExpression": f"ADD done :one{add_work} SET #s = :running, updated_at = :now",
                "ConditionExpression": (
                    f"#s IN ({open_in}) AND {_SAME_STEP} AND done < expected_minus_one"
                ),
                "ExpressionAttributeNames": {"#s": "state", "#step": "step"},
                "ExpressionAttributeValues": serialize(values),
            }
        }
        if self.table.transact([put, update]) is not None:
            return False
        self.failures.settle(job_id)
        return True

    def _after_duplicate(self, job_id: str, key: ItemKey) -> Completion:
        job = self.table.get_job(job_id)
        if job is None:
            return Completion(Outcome.DUPLICATE)
        phase = key.phase
        if (
            job.step == key.step
            and job.state is phase.counting.complete_state
            and job.counted(phase) >= job.needed(phase)
        ):
            return Completion(Outcome.RETRIGGER, job)
        if (
            phase is Phase.REDUCE
            and job.step == key.step + 1
            and job.done == 0
            and job.state in Phase.MAP.counting.open_states
        ):
            return Completion(Outcome.RETRIGGER, job)
        return Completion(Outcome.DUPLICATE, job)

    def advance(self, job_id: str, *, from_step: int, chunks: int, partitions: int) -> bool:
        """Move a job whose step `from_step` is wholly reduced to its next
        step, of `chunks` chunks (at least one), RUNNING; False if it is not
        there."""
        return self.table.update(
            job_id,
            JOB_SK,
            update=(
                "SET #s = :running, #step = :next, #expected = :chunks, "
                "#expected_m1 = :chunks_minus_one, #done = :zero, #reduced = :zero, "
                "#partitions = :partitions, #partitions_m1 = :partitions_minus_one, "
                "updated_at = :now"
            ),
            condition="#s = :reducing AND #step = :step AND #reduced = #partitions",
            attribute_names={
                "#s": "state",
                "#step": "step",
                "#expected": "expected",
                "#expected_m1": "expected_minus_one",
                "#done": "done",
                "#reduced": "reduced",
                "#partitions": "partitions",
                "#partitions_m1": "partitions_minus_one",
            },
            values={
                ":running": JobState.RUNNING.value,
                ":reducing": JobState.REDUCING.value,
                ":step": from_step,
                ":next": from_step + 1,
                ":chunks": chunks,
                ":chunks_minus_one": chunks - 1,
                ":zero": 0,
                ":partitions": partitions,
                ":partitions_minus_one": partitions - 1,
                ":now": now_iso(),
            },
        )

    def finalize(self, job_id: str, summary: dict[str, Any], result_prefix: str) -> bool:
        """Move a reduced job to SUCCEEDED with its summary and result; False
        if it is not REDUCING (already finalized, or stopped)."""
        return self.table.update(
            job_id,
            JOB_SK,
            update=(
                "SET #s = :done, summary = :sum, result_prefix = :rp, "
                "finished_at = :now, updated_at = :now"
            ),
            condition="#s = :reducing",
            attribute_names={"#s": "state"},
            values={
                ":done": JobState.SUCCEEDED.value,
                ":reducing": JobState.REDUCING.value,
                ":sum": summary,
                ":rp": result_prefix,
                ":now": now_iso(),
            },
        )
