"""SQS calls shared by the worker and submit: batched sends and deletes, and
moving a message to its dead-letter queue with the reason attached."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

BATCH = 10  # SQS's limit for send, receive and delete batches
# Message attributes of a message in a dead-letter queue: why it is there,
# which queue it came from, and how many times it was received there. A
# message without ERROR_ATTRIBUTE was moved by SQS itself (see submit.dlq).
ERROR_ATTRIBUTE = "DroverError"
SOURCE_ATTRIBUTE = "DroverSourceQueue"
RECEIVES_ATTRIBUTE = "DroverReceives"


class QueueError(RuntimeError):
    """SQS refused part of a batch for a reason a retry will not fix."""


def send_batches(sqs: Any, queue_url: str, bodies: Iterable[str]) -> int:
    """Send message bodies 10 per call; returns the count sent. Entries SQS
    reports as failed for a server-side reason are sent again once."""
    sent = 0
    batch: list[str] = []
    for body in bodies:
        batch.append(body)
        if len(batch) == BATCH:
            sent += _send(sqs, queue_url, batch)
            batch = []
    if batch:
        sent += _send(sqs, queue_url, batch)
    return sent


def _send(sqs: Any, queue_url: str, bodies: Sequence[str]) -> int:
    entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    for _ in range(2):
        resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed = resp.get("Failed", [])
        if not failed:
            return len(bodies)
        if any(f.get("SenderFault") for f in failed):
            raise QueueError(f"SQS refused messages: {failed[0].get('Message', failed[0])}")
        retry = {f["Id"] for f in failed}
        entries = [e for e in entries if e["Id"] in retry]
    raise QueueError(f"SQS failed to accept {len(entries)} message(s) twice")


@dataclass(frozen=True)
class QueueConfig:
    visibility_timeout_s: int
    max_receive_count: int | None
    dlq_url: str | None


def queue_config(sqs: Any, queue_url: str) -> QueueConfig:
    """A queue's visibility timeout and redrive policy, read from the queue
    itself so the worker never disagrees with what the stack configured."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
    ).get("Attributes", {})
    visibility = int(attrs.get("VisibilityTimeout", 30))
    policy = attrs.get("RedrivePolicy")
    if not policy:
        return QueueConfig(visibility, None, None)
    redrive = json.loads(policy)
    _, _, _, _, account, name = redrive["deadLetterTargetArn"].split(":", 5)
    url: str = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return QueueConfig(visibility, int(redrive["maxReceiveCount"]), url)


def dead_letter_attributes(*, reason: str, source_queue_url: str, receives: int) -> dict[str, Any]:
    return {
        ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
        SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source_queue_url},
        RECEIVES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(receives)},
    }


def move_to_dead_letter(
    sqs: Any,
    *,
    queue_url: str,
    dlq_url: str,
    message: dict[str, Any],
    reason: str,
    receives: int,
) -> None:
    """Send the message's body to the DLQ with the reason, then delete it from
    its queue: a permanent failure should not spend the remaining receives."""
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=message["Body"],
        MessageAttributes=dead_letter_attributes(
            reason=reason, source_queue_url=queue_url, receives=receives
        ),
    )
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class DeleteBatcher:
    """Deletes processed messages 10 per call.

    A message is handed over only once its output and accounting are durable,
    so holding its delete for a few seconds can cost, at worst, a harmless
    redelivery; it saves nearly one request per chunk.
    """

    def __init__(self, sqs: Any, queue_url: str, *, max_age_s: float) -> None:
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

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)]
            resp = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for f in resp.get("Failed", []):
                # An expired receipt means the message was redelivered; the
                # new holder will count it as a duplicate and delete it.
                log.warning("delete failed: %s", f.get("Message", f.get("Code")))
