"""Failure accounting: a job with failed chunks fails when it has settled,
whichever of its last completion and its last failure comes last."""

from __future__ import annotations

import pytest

from submit.jobs import Clients
from submit.resources import Resources
from worker.accounting import (
    CHUNK_DONE,
    CHUNK_FAILED,
    CHUNK_RETRYING,
    FAILED,
    REDUCING,
    RUNNING,
    Accounting,
    Outcome,
    chunk_sk,
)


@pytest.fixture
def acc(clients: Clients, resources: Resources) -> Accounting:
    acc = clients.accounting(resources)
    acc.create_job(
        job_id="j",
        job="wordcount",
        params={},
        partitions=1,
        expected=3,
        bucket="b",
        inputs=1,
        input_bytes=1,
        max_failures=1,
    )
    return acc


def complete(acc: Accounting, chunk: int) -> Outcome:
    return acc.complete_chunk("j", chunk, attempts=1, worker_id="w", map_seconds=0)


def fail(acc: Accounting, chunk: int) -> bool:
    return acc.record_chunk_failure(
        "j", chunk, attempts=3, error="ValueError: x", worker_id="w", final=True
    )


def state(acc: Accounting) -> tuple[str, int]:
    job = acc.get_job("j")
    assert job is not None
    return job["state"], job["done"]


def test_a_tolerated_failure_then_the_last_completion_fails_the_job(acc: Accounting) -> None:
    assert not fail(acc, 1)
    assert state(acc) == ("PENDING", 0)
    assert complete(acc, 0) is Outcome.COUNTED
    assert state(acc) == (RUNNING, 1)
    assert complete(acc, 2) is Outcome.COUNTED
    job = acc.get_job("j")
    assert job is not None
    assert (job["state"], job["done"]) == (FAILED, 2)
    assert job["error"] == "1 chunk(s) failed; every other chunk is done"


def test_the_last_completion_then_a_tolerated_failure_fails_the_job(acc: Accounting) -> None:
    assert complete(acc, 0) is Outcome.COUNTED
    assert complete(acc, 2) is Outcome.COUNTED
    assert fail(acc, 1)
    assert state(acc) == (FAILED, 2)


def test_a_failed_chunk_that_succeeds_later_completes_the_job(acc: Accounting) -> None:
    # A duplicate of the failed message, received again, succeeds.
    assert not fail(acc, 0)
    assert complete(acc, 1) is Outcome.COUNTED
    assert complete(acc, 0) is Outcome.COUNTED
    assert complete(acc, 2) is Outcome.LAST
    assert state(acc) == (REDUCING, 3)


def test_a_failure_of_a_chunk_already_done_is_not_recorded(acc: Accounting) -> None:
    assert complete(acc, 0) is Outcome.COUNTED
    assert not fail(acc, 0)
    assert acc.count_chunks("j", CHUNK_FAILED) == 0
    assert "failed_chunks" not in (acc.get_job("j") or {})


def test_reopening_a_failed_job_counts_from_where_it_stopped(acc: Accounting) -> None:
    assert complete(acc, 0) is Outcome.COUNTED
    assert not fail(acc, 1)
    assert fail(acc, 2)
    assert acc.reopen_items("j", "CHUNK#") == [1, 2]
    assert acc.reopen_job("j", RUNNING, allowed_from=(FAILED,))
    assert not acc.reopen_job("j", RUNNING, allowed_from=(FAILED,))
    job = acc.get_job("j")
    assert job is not None
    assert job["state"] == RUNNING and "error" not in job and "failed_chunks" not in job
    retrying = acc.get_item("j", chunk_sk(1))
    assert retrying is not None
    assert (retrying["state"], retrying["last_error"]) == (CHUNK_RETRYING, "ValueError: x")
    assert complete(acc, 1) is Outcome.COUNTED
    assert complete(acc, 2) is Outcome.LAST


def test_the_last_receive_names_its_holder_but_never_undoes_a_result(acc: Accounting) -> None:
    acc.note_last_receive("j", chunk_sk(1), attempts=5, worker_id="holder")
    noted = acc.get_item("j", chunk_sk(1))
    assert noted is not None
    assert (noted["state"], noted["attempts"], noted["worker"]) == (CHUNK_RETRYING, 5, "holder")
    assert complete(acc, 0) is Outcome.COUNTED
    acc.note_last_receive("j", chunk_sk(0), attempts=5, worker_id="late")
    done = acc.get_item("j", chunk_sk(0))
    assert done is not None and (done["state"], done["worker"]) == (CHUNK_DONE, "w")
    # A recorded failure keeps its worker when the recorder does not know it.
    acc.record_chunk_failure("j", 1, attempts=5, error="WorkerLost", worker_id=None, final=True)
    lost = acc.get_item("j", chunk_sk(1))
    assert lost is not None and (lost["state"], lost["worker"]) == (CHUNK_FAILED, "holder")
