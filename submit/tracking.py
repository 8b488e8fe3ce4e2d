"""Following a job: its status as a person or a script wants it, waiting
for it to end, and its result."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from submit import cost
from submit.clients import Clients
from submit.cost import JobCost
from submit.errors import OperationalError
from submit.resources import Resources
from worker import records, storage
from worker.jobs import get_job
from worker.ledger import ItemRecord, ItemState, JobRecord, JobState, Phase
from worker.ledger.admin import Admin

# A followed job's first poll comes this soon; each next one twice as late,
# up to the caller's longest interval (wait_for).
FIRST_POLL_S = 0.5


@dataclass
class JobStatus:
    job_id: str
    job: str
    state: JobState
    done: int
    expected: int
    failed: int
    reduced: int
    partitions: int
    input_bytes: int
    created_at: str
    finished_at: str | None
    elapsed_s: float
    params: dict[str, Any] = field(default_factory=dict)
    # The step under way (from 0; shown from 1) of `steps`: `done`,
    # `expected`, `reduced` and `partitions` are that step's.
    step: int = 0
    steps: int = 1
    summary: dict[str, Any] | None = None
    error: str | None = None
    failed_chunks: list[dict[str, Any]] = field(default_factory=list)
    # Estimated from the workers' recorded seconds; read with the details.
    cost: JobCost | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.SUCCEEDED

    @property
    def phase(self) -> Phase:
        return Phase.MAP if self.done < self.expected else Phase.REDUCE

    @property
    def throughput_mb_s(self) -> float:
        """Input mapped per second so far (chunks are of about equal size)."""
        if self.elapsed_s <= 0:
            return 0.0
        # Every step after the first maps what the first step read.
        share = self.done / self.expected if self.expected and not self.step else 1.0
        return self.input_bytes * share / 1e6 / self.elapsed_s

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.value
        out["step"] = self.step + 1
        out["throughput_mb_s"] = round(self.throughput_mb_s, 3)
        out["cost"] = None if self.cost is None else self.cost.to_dict()
        return out


def elapsed_s(record: JobRecord) -> float:
    start = datetime.fromisoformat(record.created_at)
    end = datetime.fromisoformat(record.finished_at) if record.finished_at else datetime.now(UTC)
    return max(0.0, (end - start).total_seconds())


def status_of(record: JobRecord, failed_items: list[dict[str, Any]] | None = None) -> JobStatus:
    """A job's status from its record; `failed_items` lists its failed
    chunks when read, else the record's own count of them is shown."""
    return JobStatus(
        job_id=record.job_id,
        job=record.job,
        state=record.state,
        done=record.done,
        expected=record.expected,
        failed=record.failed_chunks if failed_items is None else len(failed_items),
        reduced=record.reduced,
        partitions=record.partitions,
        input_bytes=record.input_bytes,
        created_at=record.created_at,
        finished_at=record.finished_at,
        elapsed_s=elapsed_s(record),
        params=record.params,
        step=record.step,
        steps=record.steps,
        summary=record.summary,
        error=record.error,
        failed_chunks=failed_items or [],
    )


def job_status(
    clients: Clients, resources: Resources, job_id: str, *, details: bool = True
) -> JobStatus:
    """The job's status; with `details`, its estimated cost and its failed
    chunks too.

    The cost comes from the sums on the job item (worker.ledger.Work), so
    a status costs one read whatever the job's size. The chunk items are
    read only for a job that has failed chunks, has failed or was
    cancelled (a chunk that fails after the cancel is not counted on the
    job item), to list them; and for a job created before the job item
    kept those sums, to add up its work."""
    ledger = clients.ledger(resources)
    record = ledger.require(job_id)
    if not details:
        return status_of(record)
    return _detailed(ledger, resources, record)


def _detailed(ledger: Admin, resources: Resources, record: JobRecord) -> JobStatus:
    """A job's status with its cost and failed chunks, from its job item as
    read (the chunk items are read only to list failed chunks)."""
    job_id = record.job_id
    failed = None
    if record.failed_chunks or record.state in (JobState.FAILED, JobState.CANCELLED):
        failed = [
            {
                "chunk": item.key.number,
                "attempts": item.attempts,
                "last_error": item.last_error,
                "worker": item.worker,
            }
            for item in ledger.items(job_id, Phase.MAP, ItemState.FAILED, step=record.step)
        ]
    status = status_of(record, failed)
    status.cost = job_cost(ledger, resources, record)
    return status


def step_items(ledger: Admin, record: JobRecord) -> list[ItemRecord]:
    """The chunks and partitions of every step the job has reached: what its
    workers recorded their time on."""
    return [
        item
        for step in range(record.step + 1)
        for phase in Phase
        for item in ledger.items(record.job_id, phase, step=step)
    ]


def job_cost(ledger: Admin, resources: Resources, record: JobRecord) -> JobCost:
    """The job's estimated cost, from its job item's sums; from its items
    for a job created before the job item kept them."""
    work = record.work if record.work is not None else cost.work_of(step_items(ledger, record))
    return cost.estimate(
        work,
        cpu_units=resources.task_cpu,
        memory_mib=resources.task_memory_mib,
        local=resources.local,
    )


def wait_for(
    clients: Clients,
    resources: Resources,
    job_id: str,
    *,
    on_update: Callable[[JobStatus], None] | None = None,
    max_poll_s: float = 2.0,
    timeout_s: float | None = None,
    sleep: Callable[[float], object] = time.sleep,
    just_submitted: bool = False,
) -> JobStatus:
    """Poll until the job ends (or the timeout passes); returns its status,
    with its failed chunks, from the same read that saw it end.

    Polls every FIRST_POLL_S at first, then twice as long each time up to
    `max_poll_s`: each poll is a billed read, and a long job needs no more
    than a progress bar's worth of them. `sleep(seconds)` waits between
    polls; a local fleet's returns early when its reducers' queue drains,
    the moment a job is done. A job `just_submitted` is not read before the
    first interval: its state is known."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    ledger = clients.ledger(resources)
    poll_s = min(FIRST_POLL_S, max_poll_s)
    if just_submitted:
        sleep(poll_s)
        poll_s = min(max_poll_s, poll_s * 2)
    while True:
        record = ledger.require(job_id)
        status = status_of(record)
        if on_update:
            on_update(status)
        if status.terminal or (deadline is not None and time.monotonic() > deadline):
            return _detailed(ledger, resources, record)
        sleep(poll_s)
        poll_s = min(max_poll_s, poll_s * 2)


def fetch_result(
    clients: Clients, resources: Resources, job_id: str, status: JobStatus | None = None
) -> Any:
    """The job's whole result, merged from its partitions; `status`, if
    given, is the job's as just read (it is not read again)."""
    if status is None or status.job_id != job_id:
        status = job_status(clients, resources, job_id, details=False)
    if not status.succeeded:
        state = status.state
        if state is JobState.FAILED:
            why = "it has no result (`retry` it once its cause is fixed)"
        elif state.terminal:
            why = "it has no result"
        else:
            why = "it has no result yet (`wait` for it)"
        raise OperationalError(f"job {job_id} is {status.state}; {why}")
    job = get_job(status.job, status.params)
    parts = [
        partial(
            storage.stream_blocks,
            clients.s3,
            resources.bucket,
            storage.result_key(job_id, r, status.step),
            records.BLOCK_BYTES,
        )
        for r in range(status.partitions)
    ]
    try:
        return job.merge_results(records.merge(parts))
    except storage.MissingObject as e:
        raise OperationalError(
            f"job {job_id}: its result is gone from the bucket ({e}); run the job again"
        ) from e


def write_result(result: Any, path: Path) -> None:
    """Write the result as one JSON document, whole or not at all: a file
    beside it, renamed over it once written. The directory must exist
    (checked before the job is queued: submit.cli.options.check_output)."""
    tmp = path.with_name(path.name + ".part")
    # json.dumps, not json.dump: only the one-shot call uses the C encoder,
    # and the text is no larger than the result already in memory.
    text = json.dumps(result, ensure_ascii=False, indent=None, separators=(",", ":"))
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    tmp.replace(path)


def list_jobs(
    clients: Clients, resources: Resources, limit: int = 20, *, costs: bool = False
) -> list[dict[str, Any]]:
    """Recent jobs, newest first; with `costs`, each one's estimated cost,
    from its job item (its items are read only for a job created before
    the job item kept the sums the estimate needs)."""
    ledger = clients.ledger(resources)
    rows = []
    for r in ledger.list_jobs(limit):
        row: dict[str, Any] = {
            "job_id": r.job_id,
            "job": r.job,
            "state": r.state.value,
            "done": r.done,
            "expected": r.expected,
            "step": r.step + 1,
            "steps": r.steps,
            "created_at": r.created_at,
            "elapsed_s": round(elapsed_s(r), 1),
        }
        if costs:
            estimate = job_cost(ledger, resources, r)
            row["cost_usd"] = round(estimate.fargate_usd, 9)
            row["spot_cost_usd"] = round(estimate.spot_usd, 9)
        rows.append(row)
    return rows
