"""Counted once, reduced once, never stranded: the DynamoDB protocol."""

from __future__ import annotations

import multiprocessing
import random

import boto3
import pytest

from submit.embedded import EmbeddedAWS, provision
from submit.jobs import Clients
from submit.resources import Resources
from worker.accounting import (
    CANCELLED,
    FAILED,
    PENDING,
    REDUCING,
    RUNNING,
    SUCCEEDED,
    Accounting,
    Outcome,
)
from worker.settings import Settings


def new_job(
    acc: Accounting,
    job_id: str = "j1",
    expected: int = 3,
    partitions: int = 1,
    max_failures: int = 0,
) -> None:
    acc.create_job(
        job_id=job_id,
        job="wordcount",
        params={},
        partitions=partitions,
        expected=expected,
        bucket="b",
        inputs=1,
        input_bytes=10,
        max_failures=max_failures,
    )


def complete(acc: Accounting, chunk: int, job_id: str = "j1") -> Outcome:
    return acc.complete_chunk(job_id, chunk, attempts=1, worker_id="w", map_seconds=0.1)


@pytest.fixture
def acc(clients: Clients, resources: Resources) -> Accounting:
    return clients.accounting(resources)


def test_a_chunk_delivered_twice_is_counted_once(acc: Accounting) -> None:
    new_job(acc)
    assert complete(acc, 0) is Outcome.COUNTED
    assert complete(acc, 0) is Outcome.DUPLICATE
    job = acc.get_job("j1")
    assert job is not None
    assert (job["done"], job["state"]) == (1, RUNNING)


def test_only_the_completion_that_reaches_the_expected_count_triggers(acc: Accounting) -> None:
    new_job(acc, expected=3)
    outcomes = [complete(acc, c) for c in (2, 0, 1)]
    assert outcomes == [Outcome.COUNTED, Outcome.COUNTED, Outcome.LAST]
    job = acc.get_job("j1")
    assert job is not None
    assert (job["done"], job["state"]) == (3, REDUCING)


def test_a_redelivered_chunk_of_a_complete_unreduced_job_triggers_again(acc: Accounting) -> None:
    # The worker that counted the last chunk died before sending the reduce.
    new_job(acc, expected=1)
    assert complete(acc, 0) is Outcome.LAST
    assert complete(acc, 0) is Outcome.RETRIGGER
    assert acc.complete_partition("j1", 0, summary={"total": 1}, worker_id="r") is Outcome.LAST
    assert acc.finalize("j1", {"total": 1}, "s3://b/jobs/j1/result/")
    assert complete(acc, 0) is Outcome.DUPLICATE
    job = acc.get_job("j1")
    assert job is not None and job["state"] == SUCCEEDED


def test_partitions_finalize_once(acc: Accounting) -> None:
    new_job(acc, expected=1, partitions=2)
    assert complete(acc, 0) is Outcome.LAST
    assert acc.complete_partition("j1", 1, summary={}, worker_id="r") is Outcome.COUNTED
    assert acc.complete_partition("j1", 1, summary={}, worker_id="r") is Outcome.DUPLICATE
    assert acc.complete_partition("j1", 0, summary={}, worker_id="r") is Outcome.LAST
    # A duplicate before finalizing asks for finalizing again; after, nothing.
    assert acc.complete_partition("j1", 0, summary={}, worker_id="r") is Outcome.RETRIGGER
    assert acc.finalize("j1", {}, "p")
    assert not acc.finalize("j1", {}, "p")
    assert acc.complete_partition("j1", 0, summary={}, worker_id="r") is Outcome.DUPLICATE


def test_chunks_of_a_cancelled_job_are_dropped_uncounted(acc: Accounting) -> None:
    new_job(acc)
    assert acc.set_state("j1", CANCELLED, allowed_from=(PENDING, RUNNING))
    assert complete(acc, 0) is Outcome.DROPPED
    job = acc.get_job("j1")
    assert job is not None and job["done"] == 0


def test_a_final_failure_beyond_the_allowance_fails_the_job(acc: Accounting) -> None:
    new_job(acc, expected=5, max_failures=1)
    common = {"attempts": 3, "error": "ValueError: boom", "worker_id": "w"}
    assert not acc.record_chunk_failure("j1", 0, final=False, **common)
    assert not acc.record_chunk_failure("j1", 0, final=True, **common)
    assert acc.record_chunk_failure("j1", 1, final=True, **common)
    job = acc.get_job("j1")
    assert job is not None and job["state"] == FAILED
    assert "2 chunk(s) failed" in job["error"]
    failed = list(acc.chunk_items("j1", "FAILED"))
    assert [f["last_error"] for f in failed] == ["ValueError: boom"] * 2


def _finish_all(endpoint: str, table: str, chunks: list[int], out: multiprocessing.Queue) -> None:
    db = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    acc = Accounting(dynamodb=db, table=table)
    out.put([complete(acc, c, job_id="race").value for c in chunks])


def test_one_trigger_when_workers_finish_the_last_chunks_at_once() -> None:
    """Four processes each complete all 30 chunks in their own order: every
    chunk is delivered four times, and the last ones at the same moment."""
    aws = EmbeddedAWS()
    endpoint = aws.start()
    try:

        def c(service: str) -> object:
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")

        res = provision(s3=c("s3"), sqs=c("sqs"), dynamodb=c("dynamodb"), settings=Settings())
        acc = Accounting(dynamodb=c("dynamodb"), table=res.table)
        new_job(acc, job_id="race", expected=30)
        out: multiprocessing.Queue = multiprocessing.Queue()
        procs = []
        for seed in range(4):
            order = list(range(30))
            random.Random(seed).shuffle(order)
            procs.append(
                multiprocessing.Process(target=_finish_all, args=(endpoint, res.table, order, out))
            )
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        flat = [o for r in results for o in r]
        assert flat.count("last") == 1
        assert flat.count("counted") == 29
        job = acc.get_job("race")
        assert job is not None
        assert (job["done"], job["state"]) == (30, REDUCING)
    finally:
        aws.stop()
