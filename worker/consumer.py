"""The queue consumer: receive a message, ask a handler what became of it,
act on the answer. It knows nothing of MapReduce.

Running a message is kept apart from acknowledging it. The handler returns a
verdict, and only the consumer touches the message afterwards:

    Delete          the work is durable (or the message is moot): delete it,
                    batched with others for a few seconds (at most a quarter
                    of the visibility timeout); a message delivered before
                    is deleted at once, since each delivery spends one of
                    its receives and a worker killed with the delete pending
                    would spend another; so is every message of a consumer
                    made with `batch_deletes=False` (the reducers, whose
                    messages seldom come in a row: a batch would be of one,
                    sent after an empty receive)
    Retry(after_s)  a transient failure: visible again after `after_s`
                    seconds (at most the visibility timeout), to be received
                    again until its queue's maxReceiveCount
    DeadLetter(r)   a permanent failure: sent to the dead-letter queue with
                    reason `r` and deleted, without spending more receives

A handler that raises leaves the message alone: SQS delivers it again after
its visibility timeout. A handler that raises `Unavailable` can run nothing
now or later: the consumer gives the message back at once and stops with
EXIT_UNAVAILABLE. While a message is in hand, `KeepAlive` extends its
visibility, up to `max_hold_s`, and the task is protected from scale-in; on
a stop request the consumer takes no new message, finishes the one in hand
if it can within the stop timeout, and gives back any it had not started.
A stop requested while it waits in a receive, with nothing in hand, ends
the wait at once (`interrupt_wait`, from the signal handler) rather than
when the long poll runs out: an idle worker stops in a moment whatever
the long poll's length. A message the interrupted receive had already
been given comes back after its visibility timeout, as a killed worker's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from worker.activity import ActivityReport
from worker.ecs import TaskProtection
from worker.keepalive import KeepAlive
from worker.queues import (
    DeleteBatcher,
    QueueConfig,
    change_visibility_batches,
    delete_batches,
    move_to_dead_letter,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNAVAILABLE = 4  # the handler cannot run messages (its work process cannot start)
EXIT_FORCED = 130  # a second signal


class StopWaiting(BaseException):
    """Raised from the signal handler into a receive in progress: a
    BaseException, so that no `except Exception` on the way retries it."""


@dataclass(frozen=True)
class Delivery:
    """One received message, as a handler sees it."""

    message_id: str
    body: str
    receives: int
    # This is the queue's last receive of the message: a failure now is final.
    last_receive: bool


@dataclass(frozen=True)
class Delete:
    outcome: str = "done"  # how the log and the stop summary name it


@dataclass(frozen=True)
class Retry:
    after_s: int


@dataclass(frozen=True)
class DeadLetter:
    reason: str


Verdict = Delete | Retry | DeadLetter


class Handler(Protocol):
    def handle(self, delivery: Delivery) -> Verdict: ...


class Unavailable(Exception):
    """Raised by a handler that can run no message, now or later."""


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return f"{counts or 'nothing'} uptime={time.monotonic() - self.started:.1f}s"


class Consumer:
    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        queue: QueueConfig,
        handler: Handler,
        worker_id: str,
        stop_timeout_s: float,
        receive_wait_s: int = 20,
        receive_batch_size: int = 1,
        protection: TaskProtection | None = None,
        activity: ActivityReport | None = None,
        burst: bool = False,
        batch_deletes: bool = True,
        max_messages: int | None = None,
        max_hold_s: float | None = None,
        before_forced_exit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue = queue
        self.handler = handler
        self.worker_id = worker_id
        self.receive_wait_s = receive_wait_s
        self.receive_batch_size = receive_batch_size
        self.protection = protection or TaskProtection(agent_uri="")
        self.activity = activity or ActivityReport(None)
        self.burst = burst
        self.batch_deletes = batch_deletes
        self.max_messages = max_messages
        self.stats = Stats()
        self.before_forced_exit = before_forced_exit
        self._receiving = False
        self.deletes = DeleteBatcher(
            sqs, queue_url, max_age_s=min(5.0, queue.visibility_timeout_s / 4)
        )
        self.keepalive = KeepAlive(
            sqs=sqs,
            queue_url=queue_url,
            visibility_timeout_s=queue.visibility_timeout_s,
            stop_timeout_s=stop_timeout_s,
            max_hold_s=max_hold_s,
            before_exit=self._before_forced_exit,
            on_tick=self._tick,
        )

    def request_stop(self) -> None:
        """Called from a signal handler: only notes the time."""
        self.keepalive.request_stop()

    def interrupt_wait(self) -> None:
        """Called from a signal handler (which runs in the consumer's
        thread) after `request_stop`: if a receive is in progress, end it
        now by raising StopWaiting into it."""
        if self._receiving:
            raise StopWaiting

    @property
    def stopping(self) -> bool:
        return self.keepalive.stop_requested_at is not None

    def run(self) -> int:
        self.keepalive.start()
        try:
            self._serve()
        except Unavailable as e:
            log.error("worker %s cannot run messages: %s", self.worker_id, e)
            return EXIT_UNAVAILABLE
        finally:
            self.keepalive.close()
            self.deletes.flush()
            self.protection.release()
            log.info("worker %s stopping: %s", self.worker_id, self.stats.line())
        return EXIT_OK

    def _serve(self) -> None:
        seen = 0
        while not self.stopping:
            if self.max_messages is not None and seen >= self.max_messages:
                break
            # Always the long poll, deletes pending or not: the keepalive's
            # tick sends them when they are due, during the wait too, so an
            # empty look first to send them sooner would cost a receive at
            # every end of a run of messages.
            try:
                self._receiving = not self.stopping
                if not self._receiving:
                    break
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.receive_batch_size,
                    WaitTimeSeconds=self.receive_wait_s,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except StopWaiting:
                break
            finally:
                self._receiving = False
            if not messages:
                self.deletes.flush()
                self.protection.release()
                if self.burst:
                    break
                continue
            self.protection.hold()
            self.activity.busy()
            for i, message in enumerate(messages):
                if self.stopping:
                    self._give_back(messages[i:])
                    break
                try:
                    self._consume(dict(message))
                except Unavailable:
                    self._give_back(messages[i:])
                    raise
                seen += 1

    def _give_back(self, messages: list[Any]) -> None:
        change_visibility_batches(
            self.sqs, self.queue_url, [m["ReceiptHandle"] for m in messages], 0
        )

    def _consume(self, message: dict[str, Any]) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        limit = self.queue.max_receive_count
        delivery = Delivery(
            message_id=message.get("MessageId", ""),
            body=message.get("Body", ""),
            receives=receives,
            last_receive=limit is not None and receives >= limit,
        )
        receipt = message["ReceiptHandle"]
        try:
            with self.keepalive.holding(receipt, delivery.message_id):
                verdict = self.handler.handle(delivery)
        except Unavailable:
            raise
        except Exception:
            # Never let one message end the worker: SQS gives this one back
            # after its visibility timeout.
            log.exception("message %s: unexpected error", delivery.message_id)
            self.stats.outcomes["crashed"] += 1
            return
        self.act(verdict, delivery, receipt)

    def act(self, verdict: Verdict, delivery: Delivery, receipt: str) -> None:
        match verdict:
            case Delete(outcome):
                self.stats.outcomes[outcome] += 1
                if delivery.receives > 1 or not self.batch_deletes:
                    delete_batches(self.sqs, self.queue_url, [receipt])
                else:
                    self.deletes.add(receipt)
            case Retry(after_s):
                self.stats.outcomes["retried"] += 1
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=max(0, min(self.queue.visibility_timeout_s, after_s)),
                )
            case DeadLetter(reason):
                self.stats.outcomes["dead_lettered"] += 1
                if self.queue.dlq_url is None:
                    log.error(
                        "no dead-letter queue configured; message %s left to expire",
                        delivery.message_id,
                    )
                    return
                move_to_dead_letter(
                    self.sqs,
                    queue_url=self.queue_url,
                    dlq_url=self.queue.dlq_url,
                    body=delivery.body,
                    receipt_handle=receipt,
                    reason=reason,
                    receives=delivery.receives,
                )

    def _tick(self, holding: bool) -> None:
        """A few times a second, from the keepalive thread: renew the task's
        scale-in protection when due, report whether work is in hand, and
        send the deletes that have waited long enough."""
        self.protection.renew_if_due()
        self.activity.tick(holding=holding)
        self.deletes.flush_if_due()

    def _before_forced_exit(self) -> None:
        self.before_forced_exit()
        self.deletes.flush()
        log.warning(
            "worker %s stopping before its work was done: %s", self.worker_id, self.stats.line()
        )
