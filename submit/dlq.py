"""The dead-letter queues: what is in them, and making every message there
a recorded failure.

A message reaches a dead-letter queue in one of two ways. A worker moves it,
after recording the failure on the chunk (or partition) item and attaching
the reason as a message attribute. Or SQS moves it by itself, when the
workers that received it maxReceiveCount times all vanished before they could
say anything (killed, out of memory): then nothing is recorded and the job
would wait for the chunk forever. `reconcile` finds such messages, records
them as failed chunks, which fails the job as a worker would have, and stamps
them with a reason so they are recorded only once. It runs where someone
looks (`status`, `wait`, `dlq list`, `dlq redrive`, `retry`) and costs one
GetQueueAttributes per dead-letter queue while the queues are empty, so the
workers' normal path pays nothing for it.

SQS has no way to look at messages without receiving them: reading a queue
here receives every message with a short visibility timeout, then makes them
visible again. Nothing consumes a dead-letter queue, so this disturbs no one
but another reader at the same moment.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from submit.jobs import Clients
from submit.resources import Resources
from worker.accounting import (
    CANCELLED,
    CHUNK_DONE,
    CHUNK_FAILED,
    SUCCEEDED,
    WORKER_LOST,
    Accounting,
    chunk_sk,
    part_sk,
)
from worker.messages import BadMessage, MapTask, ReduceTask, Task, from_json
from worker.queues import (
    BATCH,
    ERROR_ATTRIBUTE,
    RECEIVES_ATTRIBUTE,
    dead_letter_attributes,
)

log = logging.getLogger(__name__)

QUEUES = ("map", "reduce")
# Long enough to read a large dead-letter queue once through.
READ_VISIBILITY_S = 60


class DeadLetterError(LookupError):
    pass


@dataclass(frozen=True)
class Queue:
    name: str  # map or reduce
    url: str
    dlq_url: str


def queues(resources: Resources, only: str | None = None) -> list[Queue]:
    found = [
        Queue("map", resources.map_queue_url, resources.map_dlq_url),
        Queue("reduce", resources.reduce_queue_url, resources.reduce_dlq_url),
    ]
    return [q for q in found if only is None or q.name == only]


@dataclass
class DeadLetter:
    """One message in a dead-letter queue, as a user wants to see it."""

    message_id: str
    queue: str
    job_id: str | None
    chunk: int | None
    partition: int | None
    receives: int
    age_s: float
    error: str
    body: str = field(repr=False)
    receipt_handle: str = field(repr=False)
    task: Task | None = field(default=None, repr=False)

    @property
    def what(self) -> str:
        if self.chunk is not None:
            return f"chunk {self.chunk}"
        if self.partition is not None:
            return f"partition {self.partition}"
        return "-"

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "queue": self.queue,
            "job_id": self.job_id,
            "chunk": self.chunk,
            "partition": self.partition,
            "receives": self.receives,
            "age_s": round(self.age_s, 1),
            "error": self.error,
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
        chunk=task.chunk if isinstance(task, MapTask) else None,
        partition=task.partition if isinstance(task, ReduceTask) else None,
        receives=receives,
        age_s=max(0.0, now - sent_ms / 1000),
        error=error,
        body=message["Body"],
        receipt_handle=message["ReceiptHandle"],
        task=task,
    )


def depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


@contextmanager
def reading(sqs: Any, queue: Queue) -> Iterator[list[DeadLetter]]:
    """Every message of a queue's DLQ, held for the block; the ones still in
    the list at the end are made visible again (remove the ones you delete)."""
    visible = int(
        sqs.get_queue_attributes(
            QueueUrl=queue.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    by_id: dict[str, dict[str, Any]] = {}
    while True:
        # Wait a little only while the count says more should come: a short
        # poll may miss messages on AWS, and an empty long poll costs time.
        resp = sqs.receive_message(
            QueueUrl=queue.dlq_url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=1 if len(by_id) < visible else 0,
            VisibilityTimeout=READ_VISIBILITY_S,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in by_id]
        for m in messages:
            by_id[m["MessageId"]] = m  # the latest receipt handle is the one that works
        # Nothing new: all read, or the first ones came back after the hold,
        # which on a very large queue would otherwise go on for ever.
        if not new:
            break
    now = time.time()
    held = [_dead_letter(queue, m, now) for m in by_id.values()]
    held.sort(key=lambda d: (d.job_id or "", d.chunk or 0, d.partition or 0, -d.age_s))
    try:
        yield held
    finally:
        _release(sqs, queue.dlq_url, held)


def _release(sqs: Any, url: str, held: Sequence[DeadLetter]) -> None:
    for i in range(0, len(held), BATCH):
        entries = [
            {"Id": str(n), "ReceiptHandle": d.receipt_handle, "VisibilityTimeout": 0}
            for n, d in enumerate(held[i : i + BATCH])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def delete(sqs: Any, queue: Queue, held: list[DeadLetter], gone: Sequence[DeadLetter]) -> None:
    """Delete `gone` from the DLQ and from the held list."""
    for i in range(0, len(gone), BATCH):
        entries = [
            {"Id": str(n), "ReceiptHandle": d.receipt_handle}
            for n, d in enumerate(gone[i : i + BATCH])
        ]
        sqs.delete_message_batch(QueueUrl=queue.dlq_url, Entries=entries)
    ids = {d.message_id for d in gone}
    held[:] = [d for d in held if d.message_id not in ids]


# Reconciling ---------------------------------------------------------------------


def _lost_error(letter: DeadLetter, previous: str | None) -> str:
    error = (
        f"{WORKER_LOST}: no result after {letter.receives} receive(s); the workers "
        "holding it stopped without a word (killed, out of memory, or stopped past "
        "their stop timeout)"
    )
    if previous and not previous.startswith(WORKER_LOST):
        error += f"; before that: {previous}"
    return error


def _record_lost(accounting: Accounting, letter: DeadLetter) -> str:
    """Record a message SQS moved by itself as a failure; returns the reason."""
    task = letter.task
    if task is None:
        return _lost_error(letter, None)
    sk = chunk_sk(task.chunk) if isinstance(task, MapTask) else part_sk(task.partition)
    item = accounting.get_item(task.job_id, sk)
    error = _lost_error(letter, item.get("last_error") if item else None)
    job = accounting.get_job(task.job_id)
    if job is None or job["state"] in (SUCCEEDED, CANCELLED):
        return error
    if item is not None and item.get("state") in (CHUNK_DONE, CHUNK_FAILED):
        return error  # a duplicate whose twin finished, or already recorded
    # worker_id None keeps the holder named on the last receive.
    if isinstance(task, MapTask):
        failed = accounting.record_chunk_failure(
            task.job_id,
            task.chunk,
            attempts=letter.receives,
            error=error,
            worker_id=None,
            final=True,
        )
    else:
        failed = accounting.record_partition_failure(
            task.job_id,
            task.partition,
            attempts=letter.receives,
            error=error,
            worker_id=None,
            final=True,
        )
    log.warning(
        "job %s %s: lost by its workers, recorded%s",
        task.job_id,
        letter.what,
        "; the job failed" if failed else "",
    )
    return error


def _stamp(sqs: Any, queue: Queue, held: list[DeadLetter], letter: DeadLetter, reason: str) -> None:
    """Replace a message with a copy that carries its reason: a message with
    a reason is recorded, and is not recorded again."""
    resp = sqs.send_message(
        QueueUrl=queue.dlq_url,
        MessageBody=letter.body,
        MessageAttributes=dead_letter_attributes(
            reason=reason, source_queue_url=queue.url, receives=letter.receives
        ),
    )
    # The copy is visible at once; this reader does not hold it.
    delete(sqs, queue, held, [letter])
    letter.message_id, letter.error, letter.age_s = resp["MessageId"], reason, 0.0


def reconcile_held(
    clients: Clients, resources: Resources, queue: Queue, held: list[DeadLetter]
) -> list[DeadLetter]:
    """Record and stamp the held messages that SQS moved by itself; returns
    them (stamped copies, no longer held)."""
    accounting = clients.accounting(resources)
    found = []
    for letter in [d for d in held if not d.error]:
        reason = _record_lost(accounting, letter)
        _stamp(clients.sqs, queue, held, letter, reason)
        found.append(letter)
    return found


def reconcile(
    clients: Clients, resources: Resources, *, queue: str | None = None
) -> list[DeadLetter]:
    """Record every message that SQS moved to a DLQ by itself. One request
    per queue when the DLQs are empty."""
    found: list[DeadLetter] = []
    for q in queues(resources, queue):
        if depth(clients.sqs, q.dlq_url) == 0:
            continue
        with reading(clients.sqs, q) as held:
            found.extend(reconcile_held(clients, resources, q, held))
    return found


# Commands ------------------------------------------------------------------------


def list_dead_letters(
    clients: Clients,
    resources: Resources,
    *,
    queue: str | None = None,
    job_id: str | None = None,
) -> list[DeadLetter]:
    """The messages in the DLQs (reconciled on the way), oldest first per job."""
    out: list[DeadLetter] = []
    for q in queues(resources, queue):
        with reading(clients.sqs, q) as held:
            stamped = reconcile_held(clients, resources, q, held)
            out.extend(d for d in [*held, *stamped] if job_id is None or d.job_id == job_id)
    return out


def show(clients: Clients, resources: Resources, message_id: str) -> dict[str, Any]:
    """One message: its reason, its task, and what the table says of it."""
    for q in queues(resources):
        with reading(clients.sqs, q) as held:
            reconcile_held(clients, resources, q, held)
            stamped = [d for d in held if d.message_id == message_id]
        if not stamped:
            continue
        letter = stamped[0]
        out = letter.to_dict()
        try:
            out["task"] = json.loads(letter.body)
        except json.JSONDecodeError:
            out["body"] = letter.body
        out["record"] = _record_of(clients.accounting(resources), letter)
        return out
    raise DeadLetterError(f"no message {message_id!r} in the dead-letter queues (see `dlq list`)")


def _record_of(accounting: Accounting, letter: DeadLetter) -> dict[str, Any] | None:
    task = letter.task
    if task is None:
        return None
    sk = chunk_sk(task.chunk) if isinstance(task, MapTask) else part_sk(task.partition)
    item = accounting.get_item(task.job_id, sk)
    job = accounting.get_job(task.job_id)
    if item is None and job is None:
        return None
    return {
        "job_state": job["state"] if job else None,
        "state": item.get("state") if item else None,
        "attempts": item.get("attempts") if item else None,
        "last_error": item.get("last_error") if item else None,
        "worker": item.get("worker") if item else None,
    }


def purge(clients: Clients, resources: Resources, *, job_id: str) -> dict[str, int]:
    """Delete a job's messages from both DLQs; counts per queue. The failed
    chunks stay recorded: `status` still names them."""
    counts = {}
    for q in queues(resources):
        with reading(clients.sqs, q) as held:
            reconcile_held(clients, resources, q, held)
            gone = [d for d in held if d.job_id == job_id]
            delete(clients.sqs, q, held, gone)
        counts[q.name] = len(gone)
    return counts


def send_back(clients: Clients, queue: Queue, letters: Sequence[DeadLetter]) -> int:
    """Send messages back to their queue as they are (SQS's own redrive)."""
    for i in range(0, len(letters), BATCH):
        entries = [
            {"Id": str(n), "MessageBody": d.body} for n, d in enumerate(letters[i : i + BATCH])
        ]
        resp = clients.sqs.send_message_batch(QueueUrl=queue.url, Entries=entries)
        if resp.get("Failed"):
            raise DeadLetterError(f"SQS refused to take messages back: {resp['Failed'][0]}")
    return len(letters)
