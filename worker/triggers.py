"""Starting a job's reduce: one message per partition on the reduce queue.

Sent by the map worker whose completion made the count complete, again by a
worker that finds a complete job not yet reduced, by submit for a job of
zero chunks, and by `retry` for the partitions a failed reduce left undone.
Reducers are idempotent, so a second trigger costs time only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from worker.ledger import JobRecord
from worker.messages import ReduceTask, to_json
from worker.queues import send_batches

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


def trigger_reduce(
    sqs: SQSClient,
    reduce_queue_url: str,
    job: JobRecord,
    *,
    partitions: Iterable[int] | None = None,
    wake: Callable[[int], object] | None = None,
) -> None:
    """Send the reduce messages of `partitions` (default: all of them), then
    ask for a reducer per partition sent (`wake(n)`, bounded by the reduce
    fleet's maximum), best effort."""
    chosen = range(job.partitions) if partitions is None else partitions
    bodies = (
        to_json(
            ReduceTask(
                job_id=job.job_id,
                partition=r,
                job=job.job,
                params=job.params,
                partitions=job.partitions,
                chunks=job.expected,
                bucket=job.bucket,
                step=job.step,
            )
        )
        for r in chosen
    )
    sent = send_batches(sqs, reduce_queue_url, bodies)
    log.info("job %s: reduce triggered for %d partition(s)", job.job_id, sent)
    if wake is not None:
        try:
            wake(sent)
        except Exception as e:  # waking is an optimization; autoscaling still follows
            log.warning("job %s: could not wake the reduce fleet: %s", job.job_id, e)
