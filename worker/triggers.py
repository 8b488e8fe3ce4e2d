"""Starting a job's reduce: one message per partition on the reduce queue.

Sent by the map worker whose completion made the count complete, again by a
worker that finds a complete job not yet reduced, and by submit for a job of
zero chunks. Reducers are idempotent, so a second trigger costs time only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from worker.messages import ReduceTask, to_json
from worker.queues import send_batches

log = logging.getLogger(__name__)


def trigger_reduce(
    sqs: Any,
    reduce_queue_url: str,
    *,
    job_id: str,
    job: str,
    params: dict[str, Any],
    partitions: int,
    chunks: int,
    bucket: str,
    wake: Callable[[int], None] | None = None,
) -> None:
    """Send the partitions' messages, then ask for a reducer per partition
    (`wake(partitions)`, bounded by the reduce fleet's maximum)."""
    bodies = (
        to_json(
            ReduceTask(
                job_id=job_id,
                partition=r,
                job=job,
                params=params,
                partitions=partitions,
                chunks=chunks,
                bucket=bucket,
            )
        )
        for r in range(partitions)
    )
    send_batches(sqs, reduce_queue_url, bodies)
    log.info("job %s: reduce triggered for %d partition(s)", job_id, partitions)
    if wake is not None:
        try:
            wake(partitions)
        except Exception as e:  # waking is an optimization; autoscaling still follows
            log.warning("job %s: could not wake the reduce fleet: %s", job_id, e)
