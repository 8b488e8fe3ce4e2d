"""The queue consumer in process, on moto's SQS: each verdict does to the
message what it says, and nothing a handler does ends the worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from worker.consumer import (
    EXIT_UNAVAILABLE,
    Consumer,
    DeadLetter,
    Delete,
    Delivery,
    Retry,
    Unavailable,
    Verdict,
)
from worker.queues import ERROR_ATTRIBUTE, queue_config

VISIBILITY_S = 30


@dataclass
class Queues:
    sqs: Any
    url: str
    dlq_url: str

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def depth(self, url: str | None = None) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def queues(aws: None) -> Queues:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_S),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    return Queues(sqs, url, dlq)


@dataclass
class Scripted:
    """A handler that answers each body with the verdict `answer` gives."""

    answer: Callable[[Delivery], Verdict]
    seen: list[Delivery] = field(default_factory=list)

    def handle(self, delivery: Delivery) -> Verdict:
        self.seen.append(delivery)
        return self.answer(delivery)


def consumer(queues: Queues, handler: Any, **kw: Any) -> Consumer:
    return Consumer(
        sqs=queues.sqs,
        queue_url=queues.url,
        queue=queue_config(queues.sqs, queues.url),
        handler=handler,
        worker_id="w",
        stop_timeout_s=30,
        receive_wait_s=0,
        **{"burst": True, **kw},
    )


def test_delete_removes_the_message_once_its_work_is_done(queues: Queues) -> None:
    queues.send("a", "b")
    handler = Scripted(lambda d: Delete())
    c = consumer(queues, handler)
    assert c.run() == 0
    assert [d.body for d in handler.seen] == ["a", "b"]
    assert queues.depth() == (0, 0)
    assert c.stats.outcomes["done"] == 2


def test_retry_hides_the_message_for_its_backoff_and_keeps_it(queues: Queues) -> None:
    queues.send("flaky")
    handler = Scripted(lambda d: Retry(after_s=2))
    consumer(queues, handler, max_messages=1).run()
    assert queues.depth() == (0, 1)  # not deleted, hidden for the backoff
    time.sleep(2.5)
    assert queues.depth() == (1, 0)
    consumer(queues, handler, max_messages=1).run()
    assert [d.receives for d in handler.seen] == [1, 2]


def test_a_retry_longer_than_the_visibility_timeout_is_capped(queues: Queues) -> None:
    queues.send("flaky")
    c = consumer(queues, Scripted(lambda d: Retry(after_s=10_000)), max_messages=1)
    c.run()
    (message,) = queues.sqs.receive_message(QueueUrl=queues.url, VisibilityTimeout=0).get(
        "Messages", []
    ) or [None]
    assert message is None  # still hidden now, by the queue's own timeout at most
    assert queues.depth() == (0, 1)


def test_dead_letter_moves_the_message_with_its_reason(queues: Queues) -> None:
    queues.send("poison")
    consumer(queues, Scripted(lambda d: DeadLetter("BadMessage: not JSON"))).run()
    assert queues.depth() == (0, 0)
    (moved,) = queues.sqs.receive_message(QueueUrl=queues.dlq_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert moved["Body"] == "poison"
    assert moved["MessageAttributes"][ERROR_ATTRIBUTE]["StringValue"] == "BadMessage: not JSON"


def test_a_handler_that_raises_leaves_the_message_and_the_worker_goes_on(queues: Queues) -> None:
    queues.send("boom", "fine")

    def answer(d: Delivery) -> Verdict:
        if d.body == "boom":
            raise RuntimeError("handler bug")
        return Delete()

    c = consumer(queues, Scripted(answer))
    assert c.run() == 0
    # "boom" waits out its visibility timeout for another try; "fine" is gone.
    assert queues.depth() == (0, 1)
    assert (c.stats.outcomes["crashed"], c.stats.outcomes["done"]) == (1, 1)


def test_the_last_receive_is_flagged_for_the_handler(queues: Queues) -> None:
    queues.send("x")
    handler = Scripted(lambda d: Retry(after_s=0))
    for _ in range(3):
        consumer(queues, handler, max_messages=1).run()
    assert [(d.receives, d.last_receive) for d in handler.seen] == [
        (1, False),
        (2, False),
        (3, True),
    ]


def test_a_stop_request_gives_back_what_was_not_started(queues: Queues) -> None:
    queues.send(*[f"m{i}" for i in range(3)])
    c = consumer(queues, None, receive_batch_size=3, burst=False)

    def answer(d: Delivery) -> Verdict:
        c.request_stop()  # as SIGTERM would, while the first message runs
        return Delete()

    c.handler = Scripted(answer)
    assert c.run() == 0
    # The one in hand finished and was deleted; the two not started are
    # visible again at once, not after the visibility timeout.
    assert len(c.handler.seen) == 1  # type: ignore[attr-defined]
    assert queues.depth() == (2, 0)


def test_a_handler_that_cannot_run_gives_the_message_back_and_stops(queues: Queues) -> None:
    queues.send("a", "b")

    def answer(d: Delivery) -> Verdict:
        raise Unavailable("the work process could not start")

    handler = Scripted(answer)
    c = consumer(queues, handler, burst=False)
    assert c.run() == EXIT_UNAVAILABLE
    # Tried once, and given back at once rather than after its visibility timeout.
    assert len(handler.seen) == 1
    assert queues.depth() == (2, 0)


def test_visibility_is_extended_no_longer_than_max_hold(queues: Queues) -> None:
    """A message whose work outlives the limit returns to its queue."""
    queues.send("slow")
    c = consumer(queues, None, max_messages=1, max_hold_s=1.5)
    # A 3 s visibility timeout, so the heartbeat extends every second.
    queues.sqs.set_queue_attributes(QueueUrl=queues.url, Attributes={"VisibilityTimeout": "3"})
    c.keepalive.visibility_timeout_s, c.keepalive.heartbeat_s = 3, 1.0
    seen: list[tuple[int, int]] = []

    def answer(d: Delivery) -> Verdict:
        for at_s in (3.5, 5.0):
            time.sleep(at_s - (time.monotonic() - received))
            seen.append(queues.depth())
        return Retry(after_s=30)

    c.handler = Scripted(answer)
    received = time.monotonic()
    c.run()
    # Extended once, at about 1 s (held less than 1.5 s), to about 4 s; not
    # again: by 5 s it is back in the queue while the work still runs.
    assert seen == [(0, 1), (1, 0)]


def _received(queues: Queues, times: int) -> tuple[Delivery, str]:
    """The queue's one message, received `times` times (all but the last
    handed straight back)."""
    for n in range(1, times + 1):
        (m,) = queues.sqs.receive_message(
            QueueUrl=queues.url,
            AttributeNames=["ApproximateReceiveCount"],
            VisibilityTimeout=0 if n < times else VISIBILITY_S,
        )["Messages"]
    receives = int(m["Attributes"]["ApproximateReceiveCount"])
    assert receives == times
    return Delivery(m["MessageId"], m["Body"], receives, False), m["ReceiptHandle"]


def test_a_first_delivery_done_is_deleted_in_a_batch_sent_within_its_age(
    queues: Queues,
) -> None:
    queues.send("x")
    delivery, receipt = _received(queues, 1)
    c = consumer(queues, Scripted(lambda d: Delete()))
    c.act(Delete(), delivery, receipt)
    assert queues.depth() == (0, 1)  # waiting for more deletes to share a call
    # The keepalive's tick, while the worker runs its next message, sends it
    # once it has waited its batch's age: never near the visibility timeout.
    c._tick(True)
    assert queues.depth() == (0, 1)
    assert c.deletes.max_age_s <= VISIBILITY_S / 4
    time.sleep(c.deletes.max_age_s + 0.1)
    c._tick(True)
    assert queues.depth() == (0, 0)


def test_a_redelivered_message_done_is_deleted_at_once(queues: Queues) -> None:
    """A worker killed with a finished chunk's delete pending leaves it to be
    delivered again; that delivery must not wait in a batch, or a second kill
    spends another of its receives and a healthy chunk nears its DLQ."""
    queues.send("x")
    delivery, receipt = _received(queues, 2)
    c = consumer(queues, Scripted(lambda d: Delete("duplicate")))
    c.act(Delete("duplicate"), delivery, receipt)
    assert queues.depth() == (0, 0)
    assert not c.deletes.pending
