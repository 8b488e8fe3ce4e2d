"""SQS plumbing shared by the worker and submit: batched calls with one
failure policy, a queue's own configuration and depth, and dead-lettering.

Every batched call (send, delete, change visibility) goes through `batched`:
10 entries a call; an entry SQS refuses for a reason on its side (not the
sender's) is tried again, twice at most; what still fails is returned with
SQS's reason, for the caller to decide whether it matters. Sending treats a
failure as an error (`send_batches` raises); deleting and changing
visibility log it, since a receipt that expired only means the message was
delivered again, and its new holder deals with it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

BATCH = 10  # SQS's limit for send, receive and delete batches
# Tries of an entry that SQS refuses for a reason of its own.
ATTEMPTS = 3
# Message attributes of a message in a dead-letter queue: why it is there,
# which queue it came from, and how many times it was received there. A
# message without ERROR_ATTRIBUTE was moved by SQS itself (see submit.lost_work).
ERROR_ATTRIBUTE = "DroverError"
SOURCE_ATTRIBUTE = "DroverSourceQueue"
RECEIVES_ATTRIBUTE = "DroverReceives"


class QueueError(RuntimeError):
    """SQS refused messages for a reason that trying again will not fix."""


def _chunks(items: Iterable[Any], size: int = BATCH) -> Iterable[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def batched(
    call: Callable[..., Any], queue_url: str, entries: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run a *Batch call (send_message_batch, delete_message_batch,
    change_message_visibility_batch) over `entries`, given without "Id".
    Returns the entries that failed for good, each with the `Code` and
    `Message` SQS gave."""
    failed: list[dict[str, Any]] = []
    for batch in _chunks(entries):
        pending = {str(i): entry for i, entry in enumerate(batch)}
        for attempt in range(ATTEMPTS):
            resp = call(QueueUrl=queue_url, Entries=[{"Id": i, **e} for i, e in pending.items()])
            refused = {f["Id"]: f for f in resp.get("Failed", [])}
            retry = {}
            for id_, f in refused.items():
                if f.get("SenderFault") or attempt == ATTEMPTS - 1:
                    failed.append(
                        {**pending[id_], "Code": f.get("Code"), "Message": f.get("Message")}
                    )
                else:
                    retry[id_] = pending[id_]
            if not retry:
                break
            pending = retry
    return failed


def send_batches(sqs: SQSClient, queue_url: str, bodies: Iterable[str]) -> int:
    """Send message bodies 10 per call; returns the count sent."""
    sent = 0

    def entries() -> Iterable[dict[str, Any]]:
        nonlocal sent
        for body in bodies:
            sent += 1
            yield {"MessageBody": body}

    failed = batched(sqs.send_message_batch, queue_url, entries())
    if failed:
        raise QueueError(
            f"SQS refused {len(failed)} message(s): {failed[0].get('Message') or failed[0]['Code']}"
        )
    return sent


def delete_batches(sqs: SQSClient, queue_url: str, receipt_handles: Iterable[str]) -> None:
    for f in batched(
        sqs.delete_message_batch, queue_url, ({"ReceiptHandle": h} for h in receipt_handles)
    ):
        # An expired receipt means the message was delivered again; its new
        # holder will find it done and delete it.
        log.warning("delete failed: %s", f.get("Message") or f.get("Code"))


def change_visibility_batches(
    sqs: SQSClient, queue_url: str, receipt_handles: Iterable[str], visibility_timeout_s: int
) -> None:
    entries = (
        {"ReceiptHandle": h, "VisibilityTimeout": visibility_timeout_s} for h in receipt_handles
    )
    for f in batched(sqs.change_message_visibility_batch, queue_url, entries):
        log.warning("visibility change failed: %s", f.get("Message") or f.get("Code"))


@dataclass(frozen=True)
class Depth:
    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


def depth(sqs: SQSClient, queue_url: str) -> Depth:
    """A queue's approximate numbers of visible and in-flight messages."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return Depth(
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
    )


@dataclass(frozen=True)
class QueueConfig:
    visibility_timeout_s: int
    max_receive_count: int | None
    dlq_url: str | None


def queue_config(sqs: SQSClient, queue_url: str) -> QueueConfig:
    """A queue's visibility timeout and redrive policy, read from the queue
    itself so the worker never disagrees with what the stack configured."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["VisibilityTimeout", "RedrivePolicy"],
    ).get("Attributes", {})
    visibility = int(attrs.get("VisibilityTimeout", 30))
    policy = attrs.get("RedrivePolicy")
    if not policy:
        return QueueConfig(visibility, None, None)
    redrive = json.loads(policy)
    _, _, _, _, account, name = redrive["deadLetterTargetArn"].split(":", 5)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return QueueConfig(visibility, int(redrive["maxReceiveCount"]), url)


def dead_letter_attributes(*, reason: str, source_queue_url: str, receives: int) -> dict[str, Any]:
    return {
        ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
        SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source_queue_url},
        RECEIVES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(receives)},
    }


def move_to_dead_letter(
    sqs: SQSClient,
    *,
    queue_url: str,
    dlq_url: str,
    body: str,
    receipt_handle: str,
    reason: str,
    receives: int,
) -> None:
    """Send the message's body to the DLQ with the reason, then delete it from
    its queue: a permanent failure should not spend the remaining receives."""
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=body,
        MessageAttributes=dead_letter_attributes(
            reason=reason, source_queue_url=queue_url, receives=receives
        ),
    )
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)


class DeleteBatcher:
    """Deletes processed messages 10 per call.

    A message is handed over only once its output and accounting are durable,
    so holding its delete for a few seconds can cost, at worst, a harmless
    redelivery; it saves nearly one request per chunk. No delete waits longer
    than `max_age_s`: `flush_if_due` is called a few times a second while the
    worker runs its next message or waits for one, since a message whose
    delete waits past its visibility timeout is delivered again.
    """

    def __init__(self, sqs: SQSClient, queue_url: str, *, max_age_s: float) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.max_age_s = max_age_s
        self.pending: list[str] = []
        self.oldest = 0.0
        # The stop watchdog may flush from its own thread.
        self.lock = threading.Lock()

    def add(self, receipt_handle: str) -> None:
        with self.lock:
            if not self.pending:
                self.oldest = time.monotonic()
            self.pending.append(receipt_handle)
            due = len(self.pending) >= BATCH or time.monotonic() - self.oldest >= self.max_age_s
        if due:
            self.flush()

    def flush_if_due(self) -> None:
        with self.lock:
            due = bool(self.pending) and time.monotonic() - self.oldest >= self.max_age_s
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
            if pending:
                delete_batches(self.sqs, self.queue_url, pending)


def receipt_handles(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [m["ReceiptHandle"] for m in messages]
