"""Work lost with its workers: the one place that finds and records it.

A message reaches a dead-letter queue in one of two ways. A worker moves it,
after recording the failure on the chunk (or partition) item and attaching
the reason as a message attribute. Or SQS moves it by itself, when the
workers that received it maxReceiveCount times all vanished before they
could say anything (killed, out of memory): then nothing is recorded, and
the job would wait for that chunk forever.

`record_lost_work` finds such messages, records each as a failed item in
the ledger (which fails the job as a worker would have) and replaces it
with a copy stamped with its reason, so it is recorded once. It writes, so
it is an explicit step: `status` and `wait` (every LOST_WORK_EVERY_S) call
it before they read a job, and so do `retry`, `dlq redrive` and `dlq purge`
before they act on the queues; each says so in its help. It costs one
GetQueueAttributes per dead-letter queue while the queues are empty, so the
workers' normal path pays nothing for it.
"""

from __future__ import annotations

import logging
import time

from submit import dlq
from submit.clients import Clients
from submit.resources import Resources
from worker.ledger.admin import Admin, lost_work_error
from worker.queues import dead_letter_attributes, depth

log = logging.getLogger(__name__)

# How often a command following a job looks for work lost with its workers.
LOST_WORK_EVERY_S = 10.0


def _stamp(
    clients: Clients,
    queue: dlq.Queue,
    held: list[dlq.DeadLetter],
    letter: dlq.DeadLetter,
    reason: str,
) -> None:
    """Replace a message with a copy that carries its reason: a message with
    a reason is recorded, and is not recorded again."""
    resp = clients.sqs.send_message(
        QueueUrl=queue.dlq_url,
        MessageBody=letter.body,
        MessageAttributes=dead_letter_attributes(
            reason=reason, source_queue_url=queue.url, receives=letter.receives
        ),
    )
    # The copy is visible at once; this reader does not hold it.
    dlq.delete(clients.sqs, queue, held, [letter])
    letter.message_id, letter.error, letter.age_s = resp["MessageId"], reason, 0.0


def _record(ledger: Admin, letter: dlq.DeadLetter) -> str:
    task = letter.task
    if task is None:
        return lost_work_error(letter.receives)
    reason, failed = ledger.record_lost(task.job_id, task.item, receives=letter.receives)
    log.warning("%s: lost by its workers, recorded%s", task, "; the job failed" if failed else "")
    return reason


def record_held(
    clients: Clients, resources: Resources, queue: dlq.Queue, held: list[dlq.DeadLetter]
) -> list[dlq.DeadLetter]:
    """Record and stamp the held messages that SQS moved by itself; returns
    them (stamped copies, no longer held)."""
    ledger = clients.ledger(resources)
    found = []
    for letter in [d for d in held if not d.recorded]:
        _stamp(clients, queue, held, letter, _record(ledger, letter))
        found.append(letter)
    return found


def record_lost_work(
    clients: Clients, resources: Resources, *, queue: str | None = None
) -> list[dlq.DeadLetter]:
    """Record every message that SQS moved to a DLQ by itself. One request
    per queue when the DLQs are empty."""
    found: list[dlq.DeadLetter] = []
    for q in dlq.queues(resources, queue):
        if depth(clients.sqs, q.dlq_url).total == 0:
            continue
        with dlq.reading(clients.sqs, q) as held:
            found.extend(record_held(clients, resources, q, held))
    return found


class LostWorkWatch:
    """While a job is followed, record now and then the work lost with its
    workers, so a job whose chunk was lost ends FAILED instead of waiting
    forever."""

    def __init__(
        self, clients: Clients, resources: Resources, every_s: float = LOST_WORK_EVERY_S
    ) -> None:
        self.clients = clients
        self.resources = resources
        self.every_s = every_s
        self.last = time.monotonic()

    def check(self, terminal: bool) -> None:
        now = time.monotonic()
        if terminal or now - self.last < self.every_s:
            return
        self.last = now
        record_lost_work(self.clients, self.resources)
