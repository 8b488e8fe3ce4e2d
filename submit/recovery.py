"""Getting a job going again, or stopping it: retry, redrive and cancel.

A failed job resumes where it stopped. In its map phase every chunk that is
not DONE is sent again from the chunk plan that `submit` stored in S3 (the
workers dropped the failed job's remaining messages, so the dead-letter queue
alone does not hold them all); in its reduce phase every partition that is
not DONE is sent again. Before anything is sent, the failed items go back to
RETRYING and the job back to RUNNING or REDUCING, so a worker that receives
a re-sent message finds the job open. A chunk sent twice is counted once, so
re-sending a chunk that is still on its way costs time, never correctness.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from submit import dlq
from submit.jobs import Clients, JobNotFound, JobStatus
from submit.resources import Resources
from worker import storage
from worker.accounting import (
    CANCELLED,
    CHUNK_DONE,
    CHUNK_FAILED,
    FAILED,
    PENDING,
    REDUCING,
    RUNNING,
    SUCCEEDED,
    Accounting,
    chunk_sk,
    part_sk,
)
from worker.ecs import Wake
from worker.loop import Role
from worker.messages import MapTask, ReduceTask, to_json
from worker.queues import send_batches

# How often a command following a job looks for work lost with its workers.
LOST_WORK_EVERY_S = 10.0


class RecoveryError(ValueError):
    """The job is in no state for this."""


class LostWorkWatch:
    """While a job is followed, record now and then the messages that SQS
    moved to a DLQ by itself (see submit.dlq), so that a job whose chunk was
    lost with its workers ends FAILED instead of waiting forever. One
    request per DLQ per check while the DLQs are empty."""

    def __init__(
        self, clients: Clients, resources: Resources, every_s: float = LOST_WORK_EVERY_S
    ) -> None:
        self.clients = clients
        self.resources = resources
        self.every_s = every_s
        self.last = time.monotonic()

    def check(self, status: JobStatus) -> None:
        now = time.monotonic()
        if status.terminal or now - self.last < self.every_s:
            return
        self.last = now
        dlq.reconcile(self.clients, self.resources)


@dataclass
class Resumed:
    job_id: str
    from_state: str
    to_state: str
    phase: str  # map or reduce
    resent: list[int]  # chunk or partition numbers sent again
    dead_letters_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Plan:
    phase: str
    to_state: str
    numbers: list[int]


def _plan(accounting: Accounting, job: dict[str, Any]) -> _Plan:
    job_id = job["job_id"]
    if job["state"] != FAILED:
        # Still under way, with failures tolerated (--max-failures): only the
        # failed chunks; the others are on their way.
        failed = (
            accounting.chunk_numbers(job_id, CHUNK_FAILED)
            if job["state"] in (PENDING, RUNNING)
            else set()
        )
        return _Plan("map", RUNNING, sorted(failed))
    if job["done"] >= job["expected"]:
        done = {
            int(p["sk"].split("#", 1)[1])
            for p in accounting.partition_items(job_id)
            if p.get("state") == CHUNK_DONE
        }
        return _Plan("reduce", REDUCING, [r for r in range(job["partitions"]) if r not in done])
    # The workers dropped what was left of a failed job: all of it again.
    done = accounting.chunk_numbers(job_id, CHUNK_DONE)
    return _Plan("map", RUNNING, [c for c in range(job["expected"]) if c not in done])


def _check(job: dict[str, Any] | None, job_id: str) -> dict[str, Any]:
    if job is None:
        raise JobNotFound(f"no job {job_id!r} (see `python -m submit jobs`)")
    if job["state"] == SUCCEEDED:
        raise RecoveryError(f"job {job_id} succeeded; there is nothing to retry")
    if job["state"] == CANCELLED:
        raise RecoveryError(f"job {job_id} was cancelled; submit it again instead")
    return job


def _resume(
    clients: Clients,
    resources: Resources,
    job: dict[str, Any],
    *,
    dry_run: bool,
    wake: Wake | None = None,
) -> Resumed | None:
    """Reopen a job's failed work and send it again; None if nothing failed."""
    accounting = clients.accounting(resources)
    job_id = job["job_id"]
    plan = _plan(accounting, job)
    if job["state"] != FAILED and not plan.numbers:
        return None
    numbers = plan.numbers
    if plan.phase == "reduce" and not numbers:
        # Every partition is done but the job was not finalized: a duplicate
        # of a done partition makes the reducer finalize it.
        numbers = [0]
    resumed = Resumed(job_id, job["state"], plan.to_state, plan.phase, numbers)
    if dry_run:
        return resumed
    accounting.reopen_items(job_id, "CHUNK#" if plan.phase == "map" else "PART#")
    if not accounting.reopen_job(job_id, plan.to_state, allowed_from=(job["state"],)):
        raise RecoveryError(f"job {job_id} changed state while being retried; try again")
    if job["state"] != FAILED:
        # A chunk may have failed between reopening the items and the job.
        accounting.recount_failed_chunks(job_id)
    if plan.phase == "map":
        _send_chunks(clients, resources, job, numbers)
    else:
        _send_partitions(clients, resources, job, numbers)
    if wake is not None and numbers:
        wake(Role.MAP if plan.phase == "map" else Role.REDUCE, len(numbers))
    return resumed


def _send_chunks(
    clients: Clients, resources: Resources, job: dict[str, Any], chunks: Sequence[int]
) -> None:
    if not chunks:
        return
    try:
        plan = storage.get_json(clients.s3, job["bucket"], storage.plan_key(job["job_id"]))
    except storage.MissingObject as e:
        raise RecoveryError(f"job {job['job_id']}: its chunk plan is gone ({e})") from e
    tasks = plan["chunks"]
    bodies = (json.dumps(tasks[c], separators=(",", ":")) for c in chunks)
    send_batches(clients.sqs, resources.map_queue_url, bodies)


def _send_partitions(
    clients: Clients, resources: Resources, job: dict[str, Any], partitions: Sequence[int]
) -> None:
    bodies = (
        to_json(
            ReduceTask(
                job_id=job["job_id"],
                partition=r,
                job=job["job"],
                params=job["params"],
                partitions=job["partitions"],
                chunks=job["expected"],
                bucket=job["bucket"],
            )
        )
        for r in partitions
    )
    send_batches(clients.sqs, resources.reduce_queue_url, bodies)


@contextmanager
def _holding(
    clients: Clients, resources: Resources, queue: str | None = None
) -> Iterator[dict[dlq.Queue, list[dlq.DeadLetter]]]:
    """The DLQs' messages, held while work is sent again: a message that a
    new failure puts there meanwhile is not among them, and stays."""
    with ExitStack() as stack:
        yield {
            q: stack.enter_context(dlq.reading(clients.sqs, q))
            for q in dlq.queues(resources, queue)
        }


def retry(
    clients: Clients,
    resources: Resources,
    job_id: str,
    *,
    dry_run: bool = False,
    wake: Wake | None = None,
) -> Resumed:
    """Send a job's failed work again and take its messages out of the DLQs;
    `wake` asks for workers for what was sent."""
    accounting = clients.accounting(resources)
    _check(accounting.get_job(job_id), job_id)
    with _holding(clients, resources) as held:
        if not dry_run:
            for q, letters in held.items():
                dlq.reconcile_held(clients, resources, q, letters)
        job = _check(accounting.get_job(job_id), job_id)
        resumed = _resume(clients, resources, job, dry_run=dry_run, wake=wake)
        if resumed is None:
            raise RecoveryError(f"job {job_id} is {job['state']} and nothing of it failed")
        for q, letters in held.items():
            mine = [d for d in letters if d.job_id == job_id]
            resumed.dead_letters_removed += len(mine)
            if not dry_run:
                dlq.delete(clients.sqs, q, letters, mine)
    return resumed


def cancel(clients: Clients, resources: Resources, job_id: str) -> dict[str, Any]:
    """Stop a job: workers drop its remaining messages without counting them."""
    accounting = clients.accounting(resources)
    job = accounting.get_job(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id!r} (see `python -m submit jobs`)")
    if job["state"] == SUCCEEDED:
        raise RecoveryError(f"job {job_id} already succeeded")
    if job["state"] != CANCELLED and not accounting.set_state(
        job_id, CANCELLED, allowed_from=(PENDING, RUNNING, REDUCING, FAILED)
    ):
        raise RecoveryError(f"job {job_id} changed state while being cancelled; try again")
    return {
        "job_id": job_id,
        "from_state": job["state"],
        "state": CANCELLED,
        "done": job["done"],
        "expected": job["expected"],
    }


@dataclass
class RedriveReport:
    dry_run: bool
    # Per queue: messages taken out of the dead-letter queue.
    moved: dict[str, int] = field(default_factory=dict)
    # Per queue: messages sent back as they were.
    sent_back: dict[str, int] = field(default_factory=dict)
    # Failed jobs reopened and sent again from their plan, which covers
    # their dead-letter messages and the ones the workers dropped.
    resumed: list[Resumed] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["resumed"] = [r.to_dict() for r in self.resumed]
        return out


def redrive(
    clients: Clients,
    resources: Resources,
    *,
    job_id: str | None = None,
    queue: str | None = None,
    dry_run: bool = False,
    wake: Wake | None = None,
) -> RedriveReport:
    """Take messages out of the DLQs (one job's, or all) and put their work
    back: failed jobs are resumed, anything else is sent back as it was;
    `wake` asks for workers for what was put back."""
    accounting = clients.accounting(resources)
    report = RedriveReport(dry_run=dry_run)
    with _holding(clients, resources, queue) as held:
        if not dry_run:
            for q, letters in held.items():
                dlq.reconcile_held(clients, resources, q, letters)
        chosen = {
            q: [d for d in letters if job_id is None or d.job_id == job_id]
            for q, letters in held.items()
        }
        jobs: dict[str, dict[str, Any] | None] = {}
        for letters in chosen.values():
            for d in letters:
                if d.job_id is not None and d.job_id not in jobs:
                    jobs[d.job_id] = accounting.get_job(d.job_id)
        failed = sorted(j for j, job in jobs.items() if job is not None and job["state"] == FAILED)
        for j in failed:
            resumed = _resume(clients, resources, jobs[j] or {}, dry_run=dry_run, wake=wake)
            if resumed is not None:
                resumed.dead_letters_removed = sum(
                    1 for letters in chosen.values() for d in letters if d.job_id == j
                )
                report.resumed.append(resumed)
        for q, letters in chosen.items():
            back = [d for d in letters if d.job_id not in failed]
            report.moved[q.name] = len(letters)
            report.sent_back[q.name] = len(back)
            if dry_run:
                continue
            _reopen_sent_back(accounting, back)
            dlq.send_back(clients, q, back)
            dlq.delete(clients.sqs, q, held[q], letters)
            if wake is not None and back:
                wake(q.name, len(back))
    return report


def _reopen_sent_back(accounting: Accounting, letters: Sequence[dlq.DeadLetter]) -> None:
    """A message sent back to a job still running: its failed item goes back
    to RETRYING, so that the job's failure count no longer includes it."""
    by_job: dict[str, list[str]] = {}
    for d in letters:
        if isinstance(d.task, MapTask):
            by_job.setdefault(d.task.job_id, []).append(chunk_sk(d.task.chunk))
        elif isinstance(d.task, ReduceTask):
            by_job.setdefault(d.task.job_id, []).append(part_sk(d.task.partition))
    for job_id, keys in by_job.items():
        job = accounting.get_job(job_id)
        if job is None or job["state"] not in (PENDING, RUNNING, REDUCING):
            continue
        for sk in keys:
            accounting.reopen_item(job_id, sk)
        accounting.recount_failed_chunks(job_id)
