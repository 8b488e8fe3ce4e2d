"""A work queue and its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class WorkQueue(Construct):
    """`queue` redrives to `dead_letter_queue` after `max_receive_count`
    receives. Both are encrypted and refuse requests without TLS.

    The DLQ keeps messages longer than its source: SQS counts a dead letter's
    age from its first enqueue, not from its move.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        visibility_timeout_s: int,
        max_receive_count: int,
        receive_wait_s: int,
        retention_days: int,
        dead_letter_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(dead_letter_retention_days),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(visibility_timeout_s),
            receive_message_wait_time=Duration.seconds(receive_wait_s),
            retention_period=Duration.days(retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
