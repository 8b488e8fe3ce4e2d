"""The dead-letter queues as a user sees them: every message, its job, its
chunk or partition, its receives, its age and why it is there.

SQS has no way to look at messages without receiving them: reading a queue
here receives every message with a short visibility timeout, holds them for
the block, then makes them visible again. Nothing consumes a dead-letter
queue, so this disturbs no one but another reader at the same moment (two
readers at once see part each).

Listing and showing only read. A message that carries no reason was moved
by SQS itself, after workers vanished while holding it; such work is
recorded as failed by `submit.lost_work`, which the commands that act on the
queues call first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from submit.clients import Clients
from submit.errors import OperationalError
from submit.resources import Resources
from worker.ledger import ItemKey, Phase
from worker.ledger.admin import lost_work_error
from worker.messages import BadMessage, Task, from_json
from worker.queues import (
    BATCH,
    ERROR_ATTRIBUTE,
    RECEIVES_ATTRIBUTE,
    batched,
    change_visibility_batches,
    depth,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QUEUES = tuple(p.value for p in Phase)
# Long enough to read a large dead-letter queue once through.
READ_VISIBILITY_S = 60


@dataclass(frozen=True)
class Queue:
    phase: Phase
    url: str
    dlq_url: str

    @property
    def name(self) -> str:
        return self.phase.value


def queues(resources: Resources, only: str | None = None) -> list[Queue]:
    found = [
        Queue(Phase.MAP, resources.map_queue_url, resources.map_dlq_url),
        Queue(Phase.REDUCE, resources.reduce_queue_url, resources.reduce_dlq_url),
    ]
    return [q for q in found if only is None or q.name == only]


@dataclass
class DeadLetter:
    """One message in a dead-letter queue, as a user wants to see it."""

    message_id: str
    queue: str
    job_id: str | None
    item: ItemKey | None
    receives: int
    age_s: float
    # Why it is there; "" for a message SQS moved by itself, not yet recorded.
    error: str
    body: str = field(repr=False)
    receipt_handle: str = field(repr=False)
    task: Task | None = field(default=None, repr=False)

    @property
    def recorded(self) -> bool:
        return bool(self.error)

    @property
    def what(self) -> str:
        return str(self.item) if self.item else "-"

    @property
    def reason(self) -> str:
        """The reason, or what an unrecorded message means."""
        return self.error or lost_work_error(self.receives) + " (not recorded yet)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "queue": self.queue,
            "job_id": self.job_id,
            "chunk": self.item.number if self.item and self.item.phase is Phase.MAP else None,
            "partition": self.item.number
            if self.item and self.item.phase is Phase.REDUCE
            else None,
            "receives": self.receives,
            "age_s": round(self.age_s, 1),
            "error": self.reason,
            "recorded": self.recorded,
        }


def _decode(body: str) -> tuple[Task | None, str | None]:
    """The task in a body, and its job id even when the body is not a valid
    task (a wrong schema version still names its job)."""
    try:
        task = from_json(body)
        return task, task.job_id
    except BadMessage:
        pass
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None, None
    job_id = raw.get("job_id") if isinstance(raw, dict) else None
    return None, job_id if isinstance(job_id, str) else None


def _dead_letter(queue: Queue, message: dict[str, Any], now: float) -> DeadLetter:
    attrs = message.get("Attributes", {})
    user = message.get("MessageAttributes", {})
    task, job_id = _decode(message["Body"])
    error = user.get(ERROR_ATTRIBUTE, {}).get("StringValue", "")
    if RECEIVES_ATTRIBUTE in user:
        receives = int(user[RECEIVES_ATTRIBUTE]["StringValue"])
    else:
        # Not reset in the dead-letter queue; this read is one more receive.
        receives = max(0, int(attrs.get("ApproximateReceiveCount", 1)) - 1)
    sent_ms = int(attrs.get("SentTimestamp", now * 1000))
    return DeadLetter(
        message_id=message["MessageId"],
        queue=queue.name,
        job_id=job_id,
        item=task.item if task else None,
        receives=receives,
        age_s=max(0.0, now - sent_ms / 1000),
        error=error,
        body=message["Body"],
        receipt_handle=message["ReceiptHandle"],
        task=task,
    )


@contextmanager
def reading(sqs: SQSClient, queue: Queue) -> Iterator[list[DeadLetter]]:
    """Every message of a queue's DLQ, held for the block; the ones still in
    the list at the end are made visible again (remove the ones you delete)."""
    expected = depth(sqs, queue.dlq_url).visible
    by_id: dict[str, dict[str, Any]] = {}
    while True:
        # Wait a little only while the count says more should come: a short
        # poll may miss messages on AWS, and an empty long poll costs time.
        resp = sqs.receive_message(
            QueueUrl=queue.dlq_url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=1 if len(by_id) < expected else 0,
            VisibilityTimeout=READ_VISIBILITY_S,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in by_id]
        for m in messages:
            by_id[m["MessageId"]] = dict(m)  # the latest receipt handle is the one that works
        # Nothing new: all read, or the first ones came back after the hold,
        # which on a very large queue would otherwise go on for ever.
        if not new:
            break
    now = time.time()
    held = [_dead_letter(queue, m, now) for m in by_id.values()]
    held.sort(key=lambda d: (d.job_id or "", d.item or ItemKey(queue.phase, -1), -d.age_s))
    try:
        yield held
    finally:
        change_visibility_batches(sqs, queue.dlq_url, [d.receipt_handle for d in held], 0)


def delete(
    sqs: SQSClient, queue: Queue, held: list[DeadLetter], gone: Sequence[DeadLetter]
) -> None:
    """Delete `gone` from the DLQ and from the held list."""
    batched(
        sqs.delete_message_batch, queue.dlq_url, ({"ReceiptHandle": d.receipt_handle} for d in gone)
    )
    ids = {d.message_id for d in gone}
    held[:] = [d for d in held if d.message_id not in ids]


def send_back(sqs: SQSClient, queue: Queue, letters: Sequence[DeadLetter]) -> int:
    """Send messages back to their queue as they are (SQS's own redrive)."""
    failed = batched(sqs.send_message_batch, queue.url, ({"MessageBody": d.body} for d in letters))
    if failed:
        raise OperationalError(f"SQS refused to take messages back: {failed[0]}")
    return len(letters)


def list_dead_letters(
    clients: Clients,
    resources: Resources,
    *,
    queue: str | None = None,
    job_id: str | None = None,
) -> list[DeadLetter]:
    """The messages in the DLQs, by job and item."""
    out: list[DeadLetter] = []
    for q in queues(resources, queue):
        with reading(clients.sqs, q) as held:
            out.extend(d for d in held if job_id is None or d.job_id == job_id)
    return out


def show(clients: Clients, resources: Resources, message_id: str) -> dict[str, Any]:
    """One message: its reason, its task, and what the ledger says of it."""
    ledger = clients.ledger(resources)
    for q in queues(resources):
        with reading(clients.sqs, q) as held:
            found = [d for d in held if d.message_id == message_id]
        if not found:
            continue
        letter = found[0]
        out = letter.to_dict()
        try:
            out["task"] = json.loads(letter.body)
        except json.JSONDecodeError:
            out["body"] = letter.body
        out["record"] = None
        if letter.task is not None:
            job = ledger.job(letter.task.job_id)
            item = ledger.item(letter.task.job_id, letter.task.item)
            if job is not None or item is not None:
                out["record"] = {
                    "job_state": job.state.value if job else None,
                    "state": item.state.value if item else None,
                    "attempts": item.attempts if item else None,
                    "last_error": item.last_error if item else None,
                    "worker": item.worker if item else None,
                }
        return out
    raise OperationalError(f"no message {message_id!r} in the dead-letter queues (see `dlq list`)")
