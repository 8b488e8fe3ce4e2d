"""dlq list/show/redrive/purge, retry and cancel as a user runs them, on a
job whose failure is set up the way a worker records one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from submit.cli import EXIT_FAILED, EXIT_USAGE, main
from tests.reliability.conftest import Stack, write_corpus
from worker.ledger import ItemKey, ItemState, JobState, Outcome
from worker.messages import MapTask, ReduceTask, from_json
from worker.queues import dead_letter_attributes, move_to_dead_letter


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Exit code, the JSON printed (if --json), and standard error."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, json.loads(out) if "--json" in argv and out.strip() else out, err


def receive_all(stack: Stack, url: str, n: int) -> list[dict[str, Any]]:
    got: dict[str, dict[str, Any]] = {}
    while len(got) < n:
        for m in stack.clients.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", []):
            got[m["MessageId"]] = m
    return list(got.values())


def failed_map_job(stack: Stack, tmp_path: Path) -> tuple[str, int]:
    """A job whose chunk 0 is done, chunk 1 failed for good (recorded and in
    the DLQ, as a worker leaves it) and the rest dropped by the workers."""
    files = write_corpus(tmp_path / "in", files=3, lines=30, seed=2)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=400)
    chunks = stack.ledger.require(job_id).expected
    assert chunks >= 3
    url = stack.resources.map_queue_url
    for message in receive_all(stack, url, chunks):
        task = from_json(message["Body"])
        assert isinstance(task, MapTask)
        if task.chunk == 1:
            assert stack.ledger.record_failure(
                job_id,
                ItemKey.chunk(1),
                attempts=3,
                error="RuntimeError: boom",
                worker_id="w-7",
                final=True,
            )
            move_to_dead_letter(
                stack.clients.sqs,
                queue_url=url,
                dlq_url=stack.resources.map_dlq_url,
                body=message["Body"],
                receipt_handle=message["ReceiptHandle"],
                reason="RuntimeError: boom",
                receives=3,
            )
            continue
        if task.chunk == 0:
            outcome = stack.ledger.complete(
                job_id, ItemKey.chunk(0), attempts=1, worker="w-1", map_seconds=0.1
            )
            assert outcome is Outcome.COUNTED
        stack.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return job_id, chunks


@pytest.fixture
def stack(make_stack) -> Stack:
    stack = make_stack()
    stack.serve_cli()
    return stack


def test_dlq_list_show_and_status_name_the_failure(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, _ = failed_map_job(stack, tmp_path)

    code, letters, _ = cli(capsys, "dlq", "list", "--json")
    assert code == 0
    (letter,) = letters
    assert letter["job_id"] == job_id
    assert (letter["queue"], letter["chunk"], letter["receives"]) == ("map", 1, 3)
    assert letter["error"] == "RuntimeError: boom"
    assert cli(capsys, "dlq", "list", "--queue", "reduce", "--json")[1] == []
    assert cli(capsys, "dlq", "list", "--job", "another", "--json")[1] == []
    code, text, _ = cli(capsys, "dlq", "list")
    assert "last error" in text and "RuntimeError: boom" in text and "chunk 1" in text

    code, shown, _ = cli(capsys, "dlq", "show", letter["message_id"], "--json")
    assert code == 0
    assert shown["task"]["chunk"] == 1 and shown["task"]["job_id"] == job_id
    assert shown["record"] == {
        "job_state": "FAILED",
        "state": "FAILED",
        "attempts": 3,
        "last_error": "RuntimeError: boom",
        "worker": "w-7",
    }
    code, _, err = cli(capsys, "dlq", "show", "no-such-id", "--json")
    assert code == EXIT_FAILED and "no message 'no-such-id'" in err

    code, status, _ = cli(capsys, "status", job_id, "--json")
    assert status["state"] == "FAILED"
    assert [c["chunk"] for c in status["failed_chunks"]] == [1]
    assert status["failed_chunks"][0]["last_error"] == "RuntimeError: boom"


def test_redrive_dry_run_changes_nothing_then_redrive_resumes(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, chunks = failed_map_job(stack, tmp_path)
    # A malformed message in the DLQ too: no job to resume, sent back as is.
    stack.clients.sqs.send_message(
        QueueUrl=stack.resources.map_dlq_url,
        MessageBody="{not json",
        MessageAttributes=dead_letter_attributes(
            reason="BadMessage: not JSON",
            source_queue_url=stack.resources.map_queue_url,
            receives=1,
        ),
    )
    code, _, err = cli(capsys, "dlq", "redrive")
    assert code == EXIT_USAGE and "--job" in err

    code, report, _ = cli(capsys, "dlq", "redrive", "--job", job_id, "--dry-run", "--json")
    assert code == 0
    assert report["dry_run"] is True
    assert report["moved"] == {"map": 1, "reduce": 0}
    assert report["sent_back"] == {"map": 0, "reduce": 0}
    (resumed,) = report["resumed"]
    assert resumed["resent"] == list(range(1, chunks))
    assert (resumed["from_state"], resumed["to_state"]) == ("FAILED", "RUNNING")
    assert stack.depth(stack.resources.map_dlq_url)[0] == 2
    assert stack.depth(stack.resources.map_queue_url)[0] == 0
    assert stack.ledger.require(job_id).state == "FAILED"

    code, report, _ = cli(capsys, "dlq", "redrive", "--all", "--json")
    assert code == 0
    assert report["moved"] == {"map": 2, "reduce": 0}
    assert report["sent_back"] == {"map": 1, "reduce": 0}
    # Chunks 1.. again, from the plan, and the malformed message as it was.
    assert stack.depth(stack.resources.map_queue_url)[0] == chunks - 1 + 1
    assert stack.depth(stack.resources.map_dlq_url) == (0, 0)
    job = stack.ledger.require(job_id)
    assert job.state is JobState.RUNNING and job.error is None and job.failed_chunks == 0
    item = stack.ledger.item(job_id, ItemKey.chunk(1))
    assert item is not None
    assert (item.state, item.last_error) == (ItemState.RETRYING, "RuntimeError: boom")


def test_purge_asks_for_yes_and_keeps_the_record(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, _ = failed_map_job(stack, tmp_path)
    code, _, err = cli(capsys, "dlq", "purge", "--job", job_id)
    assert code == EXIT_USAGE and "--yes" in err
    assert stack.depth(stack.resources.map_dlq_url)[0] == 1

    code, purged, _ = cli(capsys, "dlq", "purge", "--job", job_id, "--yes", "--json")
    assert (code, purged) == (0, {"job_id": job_id, "deleted": {"map": 1, "reduce": 0}})
    assert stack.depth(stack.resources.map_dlq_url) == (0, 0)
    status = cli(capsys, "status", job_id, "--json")[1]
    assert status["state"] == "FAILED" and status["failed_chunks"][0]["chunk"] == 1


def test_retry_then_cancel(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, chunks = failed_map_job(stack, tmp_path)
    code, dry, _ = cli(capsys, "retry", job_id, "--dry-run", "--json")
    assert (code, dry["dry_run"], dry["resent"]) == (0, True, list(range(1, chunks)))
    assert stack.ledger.require(job_id).state == "FAILED"

    code, text, _ = cli(capsys, "retry", job_id)
    assert code == 0 and f"job {job_id}: go from FAILED to RUNNING" in text
    assert stack.depth(stack.resources.map_queue_url)[0] == chunks - 1
    assert stack.depth(stack.resources.map_dlq_url) == (0, 0)
    code, _, err = cli(capsys, "retry", job_id, "--json")
    assert code == EXIT_FAILED and "nothing of it failed" in err

    code, cancelled, _ = cli(capsys, "cancel", job_id, "--json")
    assert code == 0
    assert cancelled == {
        "job_id": job_id,
        "from_state": "RUNNING",
        "state": "CANCELLED",
        "done": 1,
        "expected": chunks,
    }
    code, _, err = cli(capsys, "retry", job_id)
    assert code == EXIT_FAILED and "cancelled" in err
    code, _, err = cli(capsys, "cancel", "no-such-job", "--json")
    assert code == EXIT_FAILED and "no job 'no-such-job'" in err


def test_retry_of_a_failed_reduce_resends_the_partitions_not_done(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_corpus(tmp_path / "in", files=1, lines=10, seed=4)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=1 << 20, partitions=3)
    acc = stack.ledger
    assert acc.complete(job_id, ItemKey.chunk(0), attempts=1, worker="w") is Outcome.LAST
    assert acc.complete(job_id, ItemKey.partition(1), summary={}, worker="r") is Outcome.COUNTED
    assert acc.record_failure(
        job_id,
        ItemKey.partition(2),
        attempts=3,
        error="MissingObject: gone",
        worker_id="r",
        final=True,
    )
    status = cli(capsys, "status", job_id, "--json")[1]
    assert status["state"] == "FAILED" and "partition 2" in status["error"]

    code, resumed, _ = cli(capsys, "retry", job_id, "--json")
    assert code == 0
    assert (resumed["phase"], resumed["to_state"], resumed["resent"]) == (
        "reduce",
        "REDUCING",
        [0, 2],
    )
    bodies = receive_all(stack, stack.resources.reduce_queue_url, 2)
    tasks = sorted((from_json(m["Body"]) for m in bodies), key=lambda t: t.partition)
    assert all(isinstance(t, ReduceTask) and t.chunks == 1 for t in tasks)
    assert [t.partition for t in tasks] == [0, 2]
    assert acc.require(job_id).state is JobState.REDUCING
    # Reducing again, nothing failed: there is nothing to retry.
    code, _, err = cli(capsys, "retry", job_id, "--json")
    assert code == EXIT_FAILED and "REDUCING and nothing of it failed" in err


def test_retry_of_a_running_job_resends_only_its_failed_chunks(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_corpus(tmp_path / "in", files=3, lines=30, seed=2)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=400, max_failures=5)
    acc = stack.ledger
    assert not acc.record_failure(
        job_id,
        ItemKey.chunk(1),
        attempts=3,
        error="OSError: flaky disk",
        worker_id="w",
        final=True,
    )
    assert acc.require(job_id).failed_chunks == 1
    queued = stack.depth(stack.resources.map_queue_url)[0]

    code, resumed, _ = cli(capsys, "retry", job_id, "--json")
    assert code == 0
    assert (resumed["from_state"], resumed["to_state"], resumed["resent"]) == (
        "PENDING",
        "RUNNING",
        [1],
    )
    assert stack.depth(stack.resources.map_queue_url)[0] == queued + 1
    job = acc.require(job_id)
    assert job.state is JobState.RUNNING and job.failed_chunks == 0
