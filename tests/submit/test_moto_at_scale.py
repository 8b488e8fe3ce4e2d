"""The embedded AWS's patched moto (submit.moto_at_scale) answers as moto
does: the same calls, run on the embedded AWS's own process and on an
unpatched in-process moto, give the same answers, rollbacks included."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from submit import moto_at_scale
from submit.embedded import local_client
from submit.embedded_process import EmbeddedProcess

TABLE = "t"


def make_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )


def items(ddb: Any) -> list[dict[str, Any]]:
    return sorted(
        ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"], key=lambda i: i["sk"]["S"]
    )


def key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "J"}, "sk": {"S": sk}}


def count_up(sk: str, *, below: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": key(sk),
            "UpdateExpression": "ADD n :one SET touched = :yes",
            "ConditionExpression": "n < :below",
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":yes": {"BOOL": True},
                ":below": {"N": str(below)},
            },
        }
    }


def put_new(sk: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {**key(sk), "state": {"S": "DONE"}},
            "ConditionExpression": "attribute_not_exists(sk)",
        }
    }


def transactions(ddb: Any) -> list[Any]:
    """What a sequence of transactions leaves and answers."""
    seen: list[Any] = []
    make_table(ddb)
    ddb.put_item(TableName=TABLE, Item={**key("JOB"), "n": {"N": "0"}})

    def attempt(actions: list[dict[str, Any]]) -> None:
        try:
            ddb.transact_write_items(TransactItems=actions)
            seen.append("ok")
        except ClientError as e:
            reasons = [r.get("Code") for r in e.response.get("CancellationReasons", [])]
            seen.append((e.response["Error"]["Code"], reasons))
        seen.append(items(ddb))

    attempt([put_new("C1"), count_up("JOB", below=2)])  # applies
    attempt([put_new("C2"), count_up("JOB", below=2)])  # applies: n 1 -> 2
    # The put applies before the count's condition fails: both undone.
    attempt([put_new("C3"), count_up("JOB", below=2)])
    # The first action's condition fails: nothing done.
    attempt([put_new("C1"), count_up("JOB", below=5)])
    # Two actions on one item: refused whole, after the first applied.
    attempt([put_new("C4"), count_up("C1", below=5), count_up("C1", below=5)])
    return seen


def queues(sqs: Any) -> list[Any]:
    """What a sequence of queue calls answers: counts, receives, deletes,
    visibility changes, delays, a redrive to a dead-letter queue."""
    seen: list[Any] = []
    dlq = sqs.create_queue(QueueName="q-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="q",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": 2}}',
        },
    )["QueueUrl"]

    def depth(queue: str = url) -> dict[str, str]:
        attrs: dict[str, str] = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return attrs

    def receive(n: int, **extra: Any) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=n, WaitTimeSeconds=0, **extra
        ).get("Messages", [])
        return got

    for start in range(0, 25, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(start + 10, 25))
            ],
        )
    sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=60)
    seen.append(depth())
    first = receive(10)
    seen.append(sorted(m["Body"] for m in first))
    seen.append(depth())
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            *({"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first[:5])),
            {"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle"},
        ],
    )
    seen.append((len(deleted["Successful"]), [f["Code"] for f in deleted.get("Failed", [])]))
    # Deleting again is quietly accepted, as moto does.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    seen.append(depth())
    # Back to visible at once; received again with a new receipt.
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first[5]["ReceiptHandle"], VisibilityTimeout=0
    )
    seen.append(depth())
    # Received twice with no visibility, a message moves to the DLQ on the
    # next receive (maxReceiveCount 2).
    rest = []
    for _ in range(3):
        got = receive(10, VisibilityTimeout=0)
        rest.append(sorted(m["Body"] for m in got))
    seen.append(rest)
    seen.append(depth())
    seen.append(depth(dlq))
    return seen


@pytest.fixture(scope="module")
def patched() -> Iterator[str]:
    aws = EmbeddedProcess()
    aws.start()
    try:
        yield aws.wait_ready()
    finally:
        aws.stop()


def test_the_patches_are_for_the_installed_moto() -> None:
    # Another moto leaves the embedded AWS unpatched: look at the patches
    # again when moto moves.
    assert version("moto") == moto_at_scale.MOTO_VERSION


def test_transactions_roll_back_as_moto_does(patched: str) -> None:
    with mock_aws():
        expected = transactions(boto3.client("dynamodb"))
    got = transactions(local_client("dynamodb", patched))
    assert got == expected
    # Failed transactions left nothing of their own: no C3, no C4, and
    # JOB counted twice.
    final = {i["sk"]["S"]: i for i in got[-1]}
    assert sorted(final) == ["C1", "C2", "JOB"]
    assert final["JOB"]["n"] == {"N": "2"}
    assert "touched" not in final["C1"]


def test_queues_answer_as_moto_does(patched: str) -> None:
    with mock_aws():
        expected = queues(boto3.client("sqs"))
    got = queues(local_client("sqs", patched))
    assert got == expected
    assert got[0] == {
        "ApproximateNumberOfMessages": "25",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "1",
    }


def test_each_service_is_still_routed_to_its_own_backend(patched: str) -> None:
    """Routing remembers a host's service: asked in turn, and again, each
    service answers its own request."""
    s3, sqs, dynamodb = (local_client(name, patched) for name in ("s3", "sqs", "dynamodb"))
    s3.create_bucket(Bucket="routing")
    sqs.create_queue(QueueName="routing")
    for _ in range(2):
        assert "routing" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert any(u.endswith("/routing") for u in sqs.list_queues()["QueueUrls"])
        assert "TableNames" in dynamodb.list_tables()


def test_a_long_poll_whose_client_has_gone_takes_no_message(patched: str) -> None:
    """A worker killed (or scaled in) during its 20 s long poll left the poll
    waiting in the embedded AWS, which handed it the next message sent: the
    message then stayed hidden for the visibility timeout."""
    sqs = local_client("sqs", patched)
    url = sqs.create_queue(QueueName="gone", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    poller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from submit.embedded import local_client; "
            "local_client('sqs', sys.argv[1]).receive_message("
            "QueueUrl=sys.argv[2], WaitTimeSeconds=20); print('returned')",
            patched,
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # started, and waiting in its receive
    poller.kill()
    assert poller.communicate()[0] == ""  # killed while it waited
    time.sleep(2)  # the server looks at a waiting poll's client every second
    sqs.send_message(QueueUrl=url, MessageBody="chunk")
    got = sqs.receive_message(
        QueueUrl=url, WaitTimeSeconds=5, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    ).get("Messages", [])
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in got] == [
        ("chunk", "1")
    ]


def test_a_long_poll_still_gets_a_message_sent_while_it_waits(patched: str) -> None:
    sqs = local_client("sqs", patched)
    url = sqs.create_queue(QueueName="waits")["QueueUrl"]
    send = threading.Timer(2.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="late"))
    send.start()
    started = time.monotonic()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
    send.join()
    assert [m["Body"] for m in got] == ["late"]
    assert time.monotonic() - started < 6  # answered when it came, not at the poll's end
