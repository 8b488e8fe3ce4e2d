"""Failure accounting: a job with failed chunks fails when it has settled,
whichever of its last completion and its last failure comes last."""

from __future__ import annotations

import pytest

from submit.clients import Clients
from submit.resources import Resources
from worker.ledger import ItemKey, ItemState, JobState, Outcome, Phase
from worker.ledger.admin import Admin, JobStateError

FAILED, REDUCING, RUNNING = JobState.FAILED, JobState.REDUCING, JobState.RUNNING


@pytest.fixture
def acc(clients: Clients, resources: Resources) -> Admin:
    acc = clients.ledger(resources)
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


def complete(acc: Admin, chunk: int) -> Outcome:
    return acc.complete("j", ItemKey.chunk(chunk), attempts=1, worker="w", map_seconds=0)


def fail(acc: Admin, chunk: int) -> bool:
    return acc.record_failure(
        "j", ItemKey.chunk(chunk), attempts=3, error="ValueError: x", worker_id="w", final=True
    )


def state(acc: Admin) -> tuple[JobState, int]:
    job = acc.job("j")
    assert job is not None
    return job.state, job.done


def test_a_tolerated_failure_then_the_last_completion_fails_the_job(acc: Admin) -> None:
    assert not fail(acc, 1)
    assert state(acc) == ("PENDING", 0)
    assert complete(acc, 0) is Outcome.COUNTED
    assert state(acc) == (RUNNING, 1)
    assert complete(acc, 2) is Outcome.COUNTED
    job = acc.job("j")
    assert job is not None
    assert (job.state, job.done) == (FAILED, 2)
    assert job.error == "1 chunk(s) failed; every other chunk is done"


def test_the_last_completion_then_a_tolerated_failure_fails_the_job(acc: Admin) -> None:
    assert complete(acc, 0) is Outcome.COUNTED
    assert complete(acc, 2) is Outcome.COUNTED
    assert fail(acc, 1)
    assert state(acc) == (FAILED, 2)


def test_a_failed_chunk_that_succeeds_later_completes_the_job(acc: Admin) -> None:
    # A duplicate of the failed message, received again, succeeds.
    assert not fail(acc, 0)
    assert complete(acc, 1) is Outcome.COUNTED
    assert complete(acc, 0) is Outcome.COUNTED
    assert complete(acc, 2) is Outcome.LAST
    assert state(acc) == (REDUCING, 3)


def test_a_failure_of_a_chunk_already_done_is_not_recorded(acc: Admin) -> None:
    assert complete(acc, 0) is Outcome.COUNTED
    assert not fail(acc, 0)
    assert acc.items("j", Phase.MAP, ItemState.FAILED) == []
    job = acc.job("j")
    assert job is not None and job.failed_chunks == 0


def test_reopening_a_failed_job_counts_from_where_it_stopped(acc: Admin) -> None:
    assert complete(acc, 0) is Outcome.COUNTED
    assert not fail(acc, 1)
    assert fail(acc, 2)
    plan = acc.plan_retry("j")
    assert plan.numbers == [1, 2]
    acc.open_retry(plan)
    with pytest.raises(JobStateError, match="changed state while being retried"):
        acc.open_retry(plan)
    job = acc.job("j")
    assert job is not None
    assert job.state is RUNNING and job.error is None and job.failed_chunks == 0
    retrying = acc.item("j", ItemKey.chunk(1))
    assert retrying is not None
    assert (retrying.state, retrying.last_error) == (ItemState.RETRYING, "ValueError: x")
    assert complete(acc, 1) is Outcome.COUNTED
    assert complete(acc, 2) is Outcome.LAST


def test_the_last_receive_names_its_holder_but_never_undoes_a_result(acc: Admin) -> None:
    acc.note_last_receive("j", ItemKey.chunk(1), attempts=5, worker_id="holder")
    noted = acc.item("j", ItemKey.chunk(1))
    assert noted is not None
    assert (noted.state, noted.attempts, noted.worker) == (ItemState.RETRYING, 5, "holder")
    assert complete(acc, 0) is Outcome.COUNTED
    acc.note_last_receive("j", ItemKey.chunk(0), attempts=5, worker_id="late")
    done = acc.item("j", ItemKey.chunk(0))
    assert done is not None and (done.state, done.worker) == (ItemState.DONE, "w")
    # A recorded failure keeps its worker when the recorder does not know it.
    acc.record_failure(
        "j", ItemKey.chunk(1), attempts=5, error="WorkerLost", worker_id=None, final=True
    )
    lost = acc.item("j", ItemKey.chunk(1))
    assert lost is not None and (lost.state, lost.worker) == (ItemState.FAILED, "holder")
