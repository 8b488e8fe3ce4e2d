"""Queueing a job's messages: SendMessageBatch calls, several at once.

A job of 20,000 chunks is 2,000 batches of ten. One after another, each
waits a round trip for the one before it; `send_concurrently` keeps
`in_flight` of them under way at once from a small pool of threads (a
botocore client is safe to share between threads, and its connection pool
holds ten). Each batch goes through `worker.queues.batched`, so the failure
policy is the one every batched call has: entries SQS refuses for a reason
of its own are tried again, and what still fails, refused for good, raises
`QueueError` once every batch has been tried, as `send_batches` does.
`progress(sent, total)` is called from the caller's thread as batches
finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from worker.queues import BATCH, QueueError, batched

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Batches under way at once: enough to hide the round trips, few enough
# for botocore's default pool of ten connections a client.
IN_FLIGHT = 8

# A batch under way: what `batched` returns is what SQS refused for good.
_Batch = Future[list[dict[str, Any]]]


def _batches(bodies: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(bodies), BATCH):
        yield [{"MessageBody": body} for body in bodies[start : start + BATCH]]


def send_concurrently(
    sqs: SQSClient,
    queue_url: str,
    bodies: Sequence[str],
    *,
    in_flight: int = IN_FLIGHT,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Send the message bodies, ten a call, `in_flight` calls at once;
    returns the count sent. Raises QueueError if SQS refused any for good."""
    if in_flight < 1:
        raise ValueError(f"in_flight must be 1 or more, got {in_flight}")
    total = len(bodies)
    failed: list[dict[str, Any]] = []
    sent = 0

    def settle(done: set[_Batch], sizes: dict[_Batch, int]) -> None:
        nonlocal sent
        for future in done:
            refused = future.result()
            failed.extend(refused)
            sent += sizes.pop(future) - len(refused)
        if progress:
            progress(sent, total)

    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="enqueue") as pool:
        sizes: dict[_Batch, int] = {}  # the batches under way, with their sizes
        for entries in _batches(bodies):
            if len(sizes) >= in_flight:
                done, _ = wait(sizes, return_when=FIRST_COMPLETED)
                settle(done, sizes)
            sizes[pool.submit(batched, sqs.send_message_batch, queue_url, entries)] = len(entries)
        done, _ = wait(sizes)
        settle(done, sizes)
    if failed:
        raise QueueError(
            f"SQS refused {len(failed)} message(s): {failed[0].get('Message') or failed[0]['Code']}"
        )
    return total
