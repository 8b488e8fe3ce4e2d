"""Messages a worker cannot use go to the DLQ with a recorded reason, at their
first receive, and the worker goes on serving good ones."""

from __future__ import annotations

import json
from pathlib import Path

from submit import dlq
from submit.tracking import fetch_result, job_status
from tests.conftest import reference_wordcount
from tests.reliability.conftest import Stack, until, write_corpus
from worker.ledger import Phase
from worker.messages import SCHEMA_VERSION


def map_message(stack: Stack, job_id: str, *, job: str = "wordcount", **piece: int) -> str:
    return json.dumps(
        {
            "version": SCHEMA_VERSION,
            "kind": "map",
            "job_id": job_id,
            "chunk": 0,
            "job": job,
            "params": {},
            "partitions": 1,
            "step": 0,
            "bucket": stack.resources.bucket,
            "pieces": [
                {
                    "key": "tiny.txt",
                    "name": "tiny.txt",
                    "index": 0,
                    "base": 0,
                    "size": piece.get("size", 100),
                    "start": piece.get("start", 0),
                    "end": piece.get("end", 100),
                }
            ],
        }
    )


def create_job(stack: Stack, job_id: str) -> None:
    stack.ledger.create_job(
        job_id=job_id,
        job="wordcount",
        params={},
        partitions=1,
        expected=1,
        bucket=stack.resources.bucket,
        inputs=1,
        input_bytes=100,
        max_failures=0,
    )


def test_each_bad_message_is_dead_lettered_with_its_reason(make_stack, tmp_path: Path) -> None:
    stack = make_stack(max_receive_count=3)
    stack.clients.s3.put_object(
        Bucket=stack.resources.bucket, Key="tiny.txt", Body=b"tiny words\n" * 9 + b"x" * 1
    )
    for job_id in ("j-bad-kind", "j-past-end", "j-short"):
        create_job(stack, job_id)
    wrong_version = json.loads(map_message(stack, "j-bad-kind"))
    wrong_version["version"] = 99
    bad = {
        "not json": "{this is not json",
        "wrong version": json.dumps(wrong_version),
        "unknown job kind": map_message(stack, "j-bad-kind", job="no-such-job"),
        "no job item": map_message(stack, "j-ghost"),
        "range past the end": map_message(stack, "j-past-end", size=10_000, start=5000, end=9000),
        "range running off the end": map_message(stack, "j-short", size=10_000, end=10_000),
    }
    worker, _ = stack.worker("map")
    stack.worker("reduce")
    for body in bad.values():
        stack.clients.sqs.send_message(QueueUrl=stack.resources.map_queue_url, MessageBody=body)
    files = write_corpus(tmp_path / "in", files=3, lines=60, seed=3)
    good = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=500)

    assert stack.wait(good).state == "SUCCEEDED"
    assert fetch_result(stack.clients, stack.resources, good) == reference_wordcount(files)
    assert worker.poll() is None, "the worker died"

    until(
        lambda: stack.depth(stack.resources.map_dlq_url)[0] == len(bad),
        timeout_s=60,
        what="every bad message in the DLQ",
    )
    letters = dlq.list_dead_letters(stack.clients, stack.resources, queue="map")
    reasons = {d.body: d for d in letters}
    expected = {
        "not json": "BadMessage: not JSON",
        "wrong version": "BadMessage: unknown schema version 99",
        "unknown job kind": "JobError: unknown job 'no-such-job'",
        "no job item": "UnknownJob: job j-ghost has no job item",
        "range past the end": "MissingObject: s3://drover-local/tiny.txt bytes 4999-",
        "range running off the end": "the object ends 9900 byte(s) short",
    }
    for case, body in bad.items():
        letter = reasons[body]
        assert expected[case] in letter.error, (case, letter.error)
        # Permanent: no receive spent beyond the first.
        assert letter.receives == 1, case

    # Where the message named a real job, the failure is on its chunk too.
    for job_id, error in (
        ("j-bad-kind", "unknown job 'no-such-job'"),
        ("j-past-end", "InvalidRange"),
        ("j-short", "short of the range"),
    ):
        status = job_status(stack.clients, stack.resources, job_id)
        assert status.state == "FAILED"
        (failed,) = status.failed_chunks
        assert error in failed["last_error"]
        assert failed["worker"].startswith("test-map-")
    # A message of no job leaves no record behind it.
    assert stack.ledger.job("j-ghost") is None
    assert stack.ledger.items("j-ghost", Phase.MAP) == []
