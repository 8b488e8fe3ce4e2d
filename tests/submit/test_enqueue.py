"""Queueing a job's messages several batches at once: every message arrives
once, progress reaches the total, and SQS's refusals are handled as every
batched call handles them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from submit.clients import Clients
from submit.enqueue import send_concurrently
from submit.resources import Resources
from submit.submission import submit_job
from worker.queues import QueueError


def drain(clients: Clients, url: str) -> list[str]:
    bodies = []
    while messages := clients.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        clients.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return bodies


def test_every_message_is_queued_once_and_progress_reaches_the_total(
    clients: Clients, resources: Resources
) -> None:
    bodies = [f"message {n}" for n in range(137)]
    seen: list[tuple[int, int]] = []
    sent = send_concurrently(
        clients.sqs,
        resources.map_queue_url,
        bodies,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert sent == 137
    assert sorted(drain(clients, resources.map_queue_url)) == sorted(bodies)
    assert seen[-1] == (137, 137)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


class RefusingSqs:
    """SendMessageBatch that refuses some bodies: for good (the sender's
    fault), or once for a reason of SQS's own, which a retry gets past."""

    def __init__(self, *, for_good: set[str], once: set[str]) -> None:
        self.for_good = for_good
        self.once = set(once)
        self.queued: list[str] = []
        self.lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failed = []
        with self.lock:
            for e in Entries:
                body = e["MessageBody"]
                if body in self.for_good:
                    failed.append(
                        {
                            "Id": e["Id"],
                            "SenderFault": True,
                            "Code": "InvalidMessageContents",
                            "Message": "refused",
                        }
                    )
                elif body in self.once:
                    self.once.discard(body)
                    failed.append({"Id": e["Id"], "SenderFault": False, "Code": "InternalError"})
                else:
                    self.queued.append(body)
        return {"Successful": [], "Failed": failed}


def test_entries_refused_for_a_reason_of_sqs_are_sent_again() -> None:
    bodies = [f"m{n}" for n in range(95)]
    sqs = RefusingSqs(for_good=set(), once={"m3", "m47", "m94"})
    assert send_concurrently(sqs, "url", bodies) == 95  # type: ignore[arg-type]
    assert sorted(sqs.queued) == sorted(bodies)


def test_entries_refused_for_good_raise_after_the_rest_is_sent() -> None:
    bodies = [f"m{n}" for n in range(95)]
    sqs = RefusingSqs(for_good={"m12", "m60"}, once=set())
    with pytest.raises(QueueError, match="refused 2 message"):
        send_concurrently(sqs, "url", bodies)  # type: ignore[arg-type]
    assert len(sqs.queued) == 93


def test_submit_reports_the_queueing_as_it_goes(
    clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    path = tmp_path / "in.txt"
    path.write_text("a few words on a line\n" * 60)
    seen: list[tuple[str, int, int]] = []
    submitted = submit_job(
        clients,
        resources,
        inputs=[str(path)],
        job="wordcount",
        params={},
        chunk_size_bytes=64,
        partitions=1,
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    queueing = [(done, total) for phase, done, total in seen if phase == "queue"]
    assert queueing[-1] == (submitted.chunks, submitted.chunks)
    assert len(drain(clients, resources.map_queue_url)) == submitted.chunks
