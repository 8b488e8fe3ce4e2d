"""Getting a job going again, or stopping it: retry, redrive, purge, cancel.

The ledger decides what a retry sends again and opens the job for it
(`worker.ledger.admin`: `plan_retry`, `open_retry`); this module sends the
messages: chunks from the chunk plan stored in S3 for the job's step, by
`submit` for the first and by the reducer that started it for a later one
(the workers dropped the failed job's remaining messages, so the dead-letter
queue alone does not hold them all), partitions built from the job record.
A chunk sent twice is counted once, so re-sending one that is still on its
way costs time, never correctness.

Each command holds the dead-letter queues' messages while it works, so a
message that a new failure puts there meanwhile is not among them and
stays; and it first records the held messages that were lost with their
workers (submit.lost_work), so that none is deleted unrecorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from submit import dlq
from submit.clients import Clients
from submit.enqueue import send_concurrently
from submit.errors import OperationalError
from submit.lost_work import record_held
from submit.resources import Resources
from worker import storage
from worker.ecs import Wake
from worker.jobs import get_job
from worker.ledger import ItemKey, JobRecord, JobState, Phase
from worker.ledger.admin import Admin, RetryPlan
from worker.steps import start_next_step, stored_plan
from worker.triggers import trigger_reduce


@dataclass
class Resumed:
    job_id: str
    from_state: str
    to_state: str
    phase: str  # map or reduce
    resent: list[int]  # chunk or partition numbers sent again
    dead_letters_removed: int = 0
    finalized: bool = False  # every partition was done: the job was finalized

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resume(
    clients: Clients,
    resources: Resources,
    plan: RetryPlan,
    *,
    dry_run: bool,
    wake: Wake | None = None,
) -> Resumed:
    """Open the plan's job again and send its work, then ask for workers for
    it with `wake`; with `dry_run`, only say."""
    job = plan.job
    resumed = Resumed(
        job.job_id,
        job.state.value,
        plan.to_state.value,
        plan.phase.value,
        plan.numbers,
        finalized=plan.finalize_only,
    )
    if dry_run:
        return resumed
    ledger = clients.ledger(resources)
    ledger.open_retry(plan)
    if plan.finalize_only:
        _finalize(clients, resources, ledger, job, wake=wake)
        return resumed
    if plan.phase is Phase.MAP:
        _send_chunks(clients, resources, job, plan.numbers)
    else:
        trigger_reduce(clients.sqs, resources.reduce_queue_url, job, partitions=plan.numbers)
    if wake is not None and plan.numbers:
        wake(plan.phase, len(plan.numbers))
    return resumed


def _finalize(
    clients: Clients, resources: Resources, ledger: Admin, job: JobRecord, *, wake: Wake | None
) -> None:
    """A job whose every partition of its step is reduced, never finalized
    or moved on (its last reducer stopped in between): do what that reducer
    would have done, finalize it or start its next step (and wake the map
    fleet for it)."""
    if not job.last_step:
        start_next_step(
            s3=clients.s3,
            sqs=clients.sqs,
            map_queue_url=resources.map_queue_url,
            ledger=ledger,
            job=job,
            from_step=job.step,
            wake=None if wake is None else partial(wake, Phase.MAP),
        )
        return
    summary = get_job(job.job).merge_summaries(ledger.summaries(job.job_id, job.step))
    prefix = storage.result_prefix(job.job_id, job.step)
    ledger.finalize(job.job_id, summary, result_prefix=f"s3://{job.bucket}/{prefix}")


def _send_chunks(
    clients: Clients, resources: Resources, job: JobRecord, chunks: Sequence[int]
) -> None:
    if not chunks:
        return
    try:
        tasks = stored_plan(clients.s3, job)
    except storage.MissingObject as e:
        raise OperationalError(str(e)) from e
    bodies = [json.dumps(tasks[c], separators=(",", ":")) for c in chunks]
    send_concurrently(clients.sqs, resources.map_queue_url, bodies)


@contextmanager
def _holding(
    clients: Clients, resources: Resources, queue: str | None = None, *, record: bool = True
) -> Iterator[dict[dlq.Queue, list[dlq.DeadLetter]]]:
    """The DLQs' messages, held for the block; with `record`, the ones lost
    with their workers are recorded first."""
    with ExitStack() as stack:
        held = {
            q: stack.enter_context(dlq.reading(clients.sqs, q))
            for q in dlq.queues(resources, queue)
        }
        if record:
            for q, letters in held.items():
                record_held(clients, resources, q, letters)
        yield held


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
    ledger = clients.ledger(resources)
    ledger.plan_retry(job_id)  # fails early, before the queues are read
    with _holding(clients, resources, record=not dry_run) as held:
        resumed = _resume(clients, resources, ledger.plan_retry(job_id), dry_run=dry_run, wake=wake)
        for q, letters in held.items():
            mine = [d for d in letters if d.job_id == job_id]
            resumed.dead_letters_removed += len(mine)
            if not dry_run:
                dlq.delete(clients.sqs, q, letters, mine)
    return resumed


def cancel(clients: Clients, resources: Resources, job_id: str) -> dict[str, Any]:
    """Stop a job: workers drop its remaining messages without counting them."""
    was = clients.ledger(resources).cancel(job_id)
    return {
        "job_id": job_id,
        "from_state": was.state.value,
        "state": JobState.CANCELLED.value,
        "done": was.done,
        "expected": was.expected,
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
    ledger = clients.ledger(resources)
    report = RedriveReport(dry_run=dry_run)
    with _holding(clients, resources, queue, record=not dry_run) as held:
        chosen = {
            q: [d for d in letters if job_id is None or d.job_id == job_id]
            for q, letters in held.items()
        }
        job_ids = sorted({d.job_id for ls in chosen.values() for d in ls if d.job_id})
        failed = set()
        for j in job_ids:
            job = ledger.job(j)
            if job is None or job.state is not JobState.FAILED:
                continue
            failed.add(j)
            resumed = _resume(clients, resources, ledger.plan_retry(j), dry_run=dry_run, wake=wake)
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
            _reopen_sent_back(ledger, back)
            dlq.send_back(clients.sqs, q, back)
            dlq.delete(clients.sqs, q, held[q], letters)
            if wake is not None and back:
                wake(q.phase, len(back))
    return report


def _reopen_sent_back(ledger: Admin, letters: Sequence[dlq.DeadLetter]) -> None:
    by_job: dict[str, list[ItemKey]] = {}
    for d in letters:
        if d.task is not None:
            by_job.setdefault(d.task.job_id, []).append(d.task.item)
    for job_id, keys in by_job.items():
        ledger.reopen_sent_back(job_id, keys)


def purge(clients: Clients, resources: Resources, *, job_id: str) -> dict[str, int]:
    """Delete a job's messages from both DLQs; counts per queue. Its failures
    stay recorded: `status` still names them."""
    counts = {}
    with _holding(clients, resources) as held:
        for q, letters in held.items():
            gone = [d for d in letters if d.job_id == job_id]
            dlq.delete(clients.sqs, q, letters, gone)
            counts[q.name] = len(gone)
    return counts
