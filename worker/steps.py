"""Starting the next step of a job of several: what its last reducer does
instead of finalizing.

The next step's input is this step's results: sorted runs of JSON lines,
which the next step's mappers read line-aligned like any input, a record a
line. They are cut into chunks of the job's chunk size, one piece each, and
the plan is stored (for `retry`, as `submit` stores the first step's)
before the job moves to the next step; then the chunks are sent. Every part
of this is deterministic, so doing it twice (the redelivered last partition
of a reducer that died half-way, a retry) sends the same chunks again, which
are counted once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from worker import storage
from worker.ledger import JobRecord, Ledger, UnknownJob
from worker.messages import MapTask, Piece, to_json
from worker.queues import send_batches
from worker.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


def plan_step(s3: S3Client, job: JobRecord, step: int) -> list[MapTask]:
    """The chunks of `step`, from the results of the step before it: each
    partition's result cut into pieces of the job's chunk size, one chunk
    each, and one chunk of nothing when every result is empty."""
    chunk_size = job.chunk_size_bytes or Settings().default_chunk_size_bytes
    sizes = storage.result_sizes(s3, job.bucket, job.job_id, step - 1)
    pieces: list[Piece] = []
    for r in range(job.step_partitions[step - 1]):
        if r not in sizes:
            raise storage.MissingObject(
                f"s3://{job.bucket}/{storage.result_key(job.job_id, r, step - 1)}: "
                f"step {step}'s result is missing"
            )
        size = sizes[r]
        key = storage.result_key(job.job_id, r, step - 1)
        pieces.extend(
            Piece(
                key=key,
                name=f"step {step} part {r}",
                index=r,
                base=0,
                size=size,
                start=start,
                end=min(size, start + chunk_size),
            )
            for start in range(0, size, chunk_size)
        )
    groups: list[tuple[Piece, ...]] = [(p,) for p in pieces] or [()]
    return [
        MapTask(
            job_id=job.job_id,
            chunk=n,
            job=job.job,
            params=job.params,
            partitions=job.step_partitions[step],
            bucket=job.bucket,
            pieces=group,
            step=step,
        )
        for n, group in enumerate(groups)
    ]


def start_next_step(
    *,
    s3: S3Client,
    sqs: SQSClient,
    map_queue_url: str,
    ledger: Ledger,
    job: JobRecord,
    from_step: int,
    wake: Callable[[int], object] | None = None,
) -> bool:
    """Move a job whose step `from_step` is wholly reduced to its next step
    and send that step's chunks; True if they were sent. Also right when
    the job has moved on already, with nothing of its next step done."""
    step = from_step + 1
    tasks = plan_step(s3, job, step)
    storage.put_json(
        s3,
        job.bucket,
        storage.plan_key(job.job_id, step),
        {"chunks": [json.loads(to_json(t)) for t in tasks]},
        tagging=storage.MAP_OUTPUT_TAGGING,
    )
    ledger.advance(
        job.job_id, from_step=from_step, chunks=len(tasks), partitions=tasks[0].partitions
    )
    now = ledger.job(job.job_id)
    if now is None:
        raise UnknownJob(f"job {job.job_id} has no job item")
    if now.step != step or now.done or not now.state.takes_work:
        log.info("job %s: step %d is under way or stopped; nothing sent", job.job_id, step + 1)
        return False
    sent = send_batches(sqs, map_queue_url, (to_json(t) for t in tasks))
    log.info("job %s: step %d of %d started, %d chunk(s)", job.job_id, step + 1, job.steps, sent)
    if wake is not None:
        try:
            wake(sent)
        except Exception as e:  # waking is an optimization; autoscaling still follows
            log.warning("job %s: could not wake the map fleet: %s", job.job_id, e)
    return True


def stored_plan(s3: S3Client, job: JobRecord) -> list[dict[str, Any]]:
    """The chunk messages of the job's current step, as planned."""
    try:
        plan = storage.get_json(s3, job.bucket, storage.plan_key(job.job_id, job.step))
    except storage.MissingObject as e:
        raise storage.MissingObject(f"job {job.job_id}: its chunk plan is gone ({e})") from e
    chunks: list[dict[str, Any]] = plan["chunks"]
    return chunks
