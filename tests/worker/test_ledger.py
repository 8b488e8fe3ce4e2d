"""The ledger: counted once, reduced once, never stranded; and every move
of a job between states, on moto's DynamoDB."""

from __future__ import annotations

import multiprocessing
import random

import boto3
import pytest

from submit.clients import Clients
from submit.embedded import EmbeddedAWS, provision
from submit.resources import Resources
from worker.ledger import ItemKey, ItemState, JobState, Ledger, Outcome
from worker.ledger.admin import Admin, JobStateError
from worker.settings import Settings

PENDING, RUNNING, REDUCING = JobState.PENDING, JobState.RUNNING, JobState.REDUCING
SUCCEEDED, FAILED, CANCELLED = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED


def new_job(
    acc: Admin,
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


def complete(acc: Ledger, chunk: int, job_id: str = "j1") -> Outcome:
    return acc.complete(job_id, ItemKey.chunk(chunk), attempts=1, worker="w", map_seconds=0.1)


def reduce(acc: Ledger, partition: int, job_id: str = "j1") -> Outcome:
    return acc.complete(job_id, ItemKey.partition(partition), summary={"total": 1}, worker="r")


@pytest.fixture
def acc(clients: Clients, resources: Resources) -> Admin:
    return clients.ledger(resources)


def test_a_chunk_delivered_twice_is_counted_once(acc: Admin) -> None:
    new_job(acc)
    assert complete(acc, 0) is Outcome.COUNTED
    assert complete(acc, 0) is Outcome.DUPLICATE
    job = acc.job("j1")
    assert job is not None
    assert (job.done, job.state) == (1, RUNNING)


def test_only_the_completion_that_reaches_the_expected_count_triggers(acc: Admin) -> None:
    new_job(acc, expected=3)
    outcomes = [complete(acc, c) for c in (2, 0, 1)]
    assert outcomes == [Outcome.COUNTED, Outcome.COUNTED, Outcome.LAST]
    job = acc.job("j1")
    assert job is not None
    assert (job.done, job.state) == (3, REDUCING)


def test_a_redelivered_chunk_of_a_complete_unreduced_job_triggers_again(acc: Admin) -> None:
    # The worker that counted the last chunk died before sending the reduce.
    new_job(acc, expected=1)
    assert complete(acc, 0) is Outcome.LAST
    assert complete(acc, 0) is Outcome.RETRIGGER
    assert reduce(acc, 0) is Outcome.LAST
    assert acc.finalize("j1", {"total": 1}, "s3://b/jobs/j1/result/")
    assert complete(acc, 0) is Outcome.DUPLICATE
    job = acc.job("j1")
    assert job is not None and job.state is SUCCEEDED


def test_partitions_finalize_once(acc: Admin) -> None:
    new_job(acc, expected=1, partitions=2)
    assert complete(acc, 0) is Outcome.LAST
    assert reduce(acc, 1) is Outcome.COUNTED
    assert reduce(acc, 1) is Outcome.DUPLICATE
    assert reduce(acc, 0) is Outcome.LAST
    # A duplicate before finalizing asks for finalizing again; after, nothing.
    assert reduce(acc, 0) is Outcome.RETRIGGER
    assert acc.finalize("j1", {}, "p")
    assert not acc.finalize("j1", {}, "p")
    assert reduce(acc, 0) is Outcome.DUPLICATE


def test_chunks_of_a_cancelled_job_are_dropped_uncounted(acc: Admin) -> None:
    new_job(acc)
    assert acc.cancel("j1").state is PENDING
    assert complete(acc, 0) is Outcome.DROPPED
    job = acc.job("j1")
    assert job is not None and job.done == 0


def test_a_final_failure_beyond_the_allowance_fails_the_job(acc: Admin) -> None:
    new_job(acc, expected=5, max_failures=1)
    common = {"attempts": 3, "error": "ValueError: boom", "worker_id": "w"}
    assert not acc.record_failure("j1", ItemKey.chunk(0), final=False, **common)
    assert not acc.record_failure("j1", ItemKey.chunk(0), final=True, **common)
    assert acc.record_failure("j1", ItemKey.chunk(1), final=True, **common)
    job = acc.job("j1")
    assert job is not None and job.state is FAILED
    assert "2 chunk(s) failed" in (job.error or "")
    failed = acc.items("j1", ItemKey.chunk(0).phase, ItemState.FAILED)
    assert [f.last_error for f in failed] == ["ValueError: boom"] * 2


def _finish_all(endpoint: str, table: str, chunks: list[int], out: multiprocessing.Queue) -> None:
    db = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    acc = Ledger(dynamodb=db, table=table)
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
        acc = Admin(dynamodb=c("dynamodb"), table=res.table)
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
        job = acc.job("race")
        assert job is not None
        assert (job.done, job.state) == (30, REDUCING)
    finally:
        aws.stop()


# Every move between states, as the model allows it --------------------------


def test_the_model_allows_only_the_documented_moves() -> None:
    from worker.ledger.model import TRANSITIONS, sources

    assert not TRANSITIONS[SUCCEEDED] and not TRANSITIONS[CANCELLED]
    assert SUCCEEDED.final and CANCELLED.final and not FAILED.final
    assert [s for s in JobState if s.terminal] == [SUCCEEDED, FAILED, CANCELLED]
    assert [s for s in JobState if s.takes_work] == [PENDING, RUNNING, REDUCING]
    assert set(sources(CANCELLED)) == {PENDING, RUNNING, REDUCING, FAILED}
    assert set(sources(RUNNING)) == {PENDING, FAILED, REDUCING}  # REDUCING: the next step


@pytest.mark.parametrize("key", [ItemKey.chunk(0), ItemKey.chunk(123456), ItemKey.partition(7)])
def test_item_keys_read_back_as_written(key: ItemKey) -> None:
    assert ItemKey.parse(key.sk) == key
    with pytest.raises(ValueError):
        ItemKey.parse("JOB")


def test_a_job_of_no_chunks_starts_reducing(acc: Admin) -> None:
    new_job(acc, expected=0)
    job = acc.job("j1")
    assert job is not None and job.state is REDUCING
    assert reduce(acc, 0) is Outcome.LAST


def test_a_failed_partition_fails_the_job_at_once(acc: Admin) -> None:
    new_job(acc, expected=1, partitions=2)
    assert complete(acc, 0) is Outcome.LAST
    assert acc.record_failure(
        "j1",
        ItemKey.partition(1),
        attempts=3,
        error="MissingObject: gone",
        worker_id="r",
        final=True,
    )
    job = acc.job("j1")
    assert job is not None and job.state is FAILED
    assert job.error == "reduce of partition 1 failed: MissingObject: gone"


def test_retry_reopens_a_failed_map_phase_with_the_chunks_not_done(acc: Admin) -> None:
    new_job(acc, expected=3)
    assert complete(acc, 0) is Outcome.COUNTED
    assert acc.record_failure(
        "j1", ItemKey.chunk(1), attempts=3, error="E: x", worker_id="w", final=True
    )
    plan = acc.plan_retry("j1")
    assert (plan.phase.value, plan.to_state, plan.numbers) == ("map", RUNNING, [1, 2])
    acc.open_retry(plan)
    job = acc.job("j1")
    assert job is not None
    assert (job.state, job.error, job.failed_chunks, job.finished_at) == (RUNNING, None, 0, None)
    (item,) = acc.items("j1", ItemKey.chunk(1).phase, ItemState.RETRYING)
    assert (item.key, item.last_error, item.attempts) == (ItemKey.chunk(1), "E: x", 3)
    # The retried chunks complete the job as if nothing had failed.
    assert [complete(acc, c) for c in (1, 2)] == [Outcome.COUNTED, Outcome.LAST]


def test_retry_reopens_a_failed_reduce_with_the_partitions_not_done(acc: Admin) -> None:
    new_job(acc, expected=1, partitions=3)
    complete(acc, 0)
    assert reduce(acc, 1) is Outcome.COUNTED
    acc.record_failure(
        "j1", ItemKey.partition(2), attempts=3, error="E: x", worker_id="r", final=True
    )
    plan = acc.plan_retry("j1")
    assert (plan.phase.value, plan.to_state, plan.numbers) == ("reduce", REDUCING, [0, 2])
    acc.open_retry(plan)
    assert [reduce(acc, 0), reduce(acc, 2)] == [Outcome.COUNTED, Outcome.LAST]


def test_a_reduced_job_never_finalized_needs_only_finalizing(acc: Admin) -> None:
    new_job(acc, expected=1, partitions=1)
    complete(acc, 0)
    assert reduce(acc, 0) is Outcome.LAST
    # Its reducer stopped before finalizing; something failed the job since.
    assert acc.failures.fail("j1", "stopped", phase=ItemKey.partition(0).phase)
    plan = acc.plan_retry("j1")
    assert plan.finalize_only and plan.to_state is REDUCING
    acc.open_retry(plan)
    assert acc.finalize("j1", {}, "p")
    job = acc.job("j1")
    assert job is not None and job.state is SUCCEEDED


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("succeeded", "succeeded; there is nothing to retry"),
        ("cancelled", "was cancelled; submit it again"),
        ("running", "is RUNNING and nothing of it failed"),
    ],
)
def test_retry_refuses_a_job_with_nothing_to_retry(acc: Admin, setup: str, message: str) -> None:
    new_job(acc, expected=2)
    complete(acc, 0)
    if setup == "succeeded":
        complete(acc, 1)
        reduce(acc, 0)
        acc.finalize("j1", {}, "p")
    elif setup == "cancelled":
        acc.cancel("j1")
    with pytest.raises(JobStateError, match=message):
        acc.plan_retry("j1")


def test_cancel_stops_any_open_job_but_not_a_finished_one(acc: Admin) -> None:
    new_job(acc, expected=1)
    complete(acc, 0)
    assert acc.cancel("j1").state is REDUCING
    assert acc.cancel("j1").state is CANCELLED  # again: nothing changes
    assert reduce(acc, 0) is Outcome.DROPPED
    new_job(acc, job_id="j2", expected=0)
    reduce(acc, 0, job_id="j2")
    acc.finalize("j2", {}, "p")
    with pytest.raises(JobStateError, match="already succeeded"):
        acc.cancel("j2")


def test_lost_work_is_recorded_once_and_never_over_a_done_item(acc: Admin) -> None:
    new_job(acc, expected=2, max_failures=5)
    complete(acc, 0)
    acc.note_last_receive("j1", ItemKey.chunk(1), attempts=2, worker_id="doomed")
    reason, failed = acc.record_lost("j1", ItemKey.chunk(1), receives=2)
    assert reason.startswith("WorkerLost: no result after 2 receive(s)")
    assert failed  # the only chunk left failed: nothing else can finish the job
    (item,) = acc.items("j1", ItemKey.chunk(1).phase, ItemState.FAILED)
    assert (item.worker, item.attempts) == ("doomed", 2)
    # Recorded already; and a chunk that is done is never marked lost.
    assert acc.record_lost("j1", ItemKey.chunk(1), receives=2)[1] is False
    assert acc.record_lost("j1", ItemKey.chunk(0), receives=3)[1] is False
    assert acc.item("j1", ItemKey.chunk(0)).state is ItemState.DONE  # type: ignore[union-attr]


def test_the_failed_count_follows_the_items_when_a_failed_chunk_succeeds(acc: Admin) -> None:
    new_job(acc, expected=3, max_failures=1)
    acc.record_failure("j1", ItemKey.chunk(0), attempts=3, error="E", worker_id="w", final=True)
    job = acc.job("j1")
    assert job is not None and job.failed_chunks == 1
    # A second copy of chunk 0's message succeeds after all.
    assert complete(acc, 0) is Outcome.COUNTED
    assert acc.failures.recount("j1") is False
    job = acc.job("j1")
    assert job is not None and (job.failed_chunks, job.state) == (0, RUNNING)
