"""`status` and `jobs` of a big job cost what they cost for a small one: the
job item carries the sums its cost estimate needs, and the items are read
only to list failed chunks, or for a job created before those sums."""

from __future__ import annotations

import pytest

from submit import cost
from submit.clients import Clients
from submit.resources import Resources
from submit.tracking import job_status, list_jobs, step_items
from tests.conftest import counting
from worker.ledger import ItemKey, JobState, Outcome, Work
from worker.ledger.admin import Admin


def new_job(ledger: Admin, job_id: str, chunks: int, *, max_failures: int = 0) -> None:
    ledger.create_job(
        job_id=job_id,
        job="wordcount",
        params={},
        partitions=1,
        expected=chunks,
        bucket="b",
        inputs=1,
        input_bytes=chunks * 100,
        max_failures=max_failures,
    )


def finished_job(ledger: Admin, job_id: str, chunks: int, *, failed: int = 0) -> None:
    """A job of `chunks` chunks, each done in 0.5 s, reduced in 2 s, except
    `failed` chunks whose last attempt failed."""
    new_job(ledger, job_id, chunks, max_failures=failed)
    for n in range(failed):
        ledger.record_failure(
            job_id, ItemKey.chunk(n), attempts=3, error="ValueError: bad", worker_id="w", final=True
        )
    outcomes = [
        ledger.complete(job_id, ItemKey.chunk(n), attempts=1, worker="w", map_seconds=0.5)
        for n in range(failed, chunks)
    ]
    if not failed:
        assert outcomes[-1] is Outcome.LAST
        ledger.complete(job_id, ItemKey.partition(0), summary={}, worker="r", reduce_seconds=2.0)


@pytest.fixture
def ledger(clients: Clients, resources: Resources) -> Admin:
    return clients.ledger(resources)


def test_status_of_a_big_job_costs_what_a_small_ones_does(
    clients: Clients, resources: Resources, ledger: Admin
) -> None:
    finished_job(ledger, "small", 2)
    finished_job(ledger, "big", 200)
    statuses = {}
    requests = {}
    for job_id in ("small", "big"):
        with counting(clients) as calls:
            statuses[job_id] = job_status(clients, resources, job_id)
        requests[job_id] = calls
    # One read of the job item, whatever the job's size.
    assert requests["big"] == requests["small"] == ["dynamodb.GetItem"]
    big = statuses["big"]
    assert (big.done, big.expected, big.failed, big.failed_chunks) == (200, 200, 0, [])
    assert big.cost is not None
    assert big.cost.task_s == pytest.approx(200 * 0.5 + 2.0)
    # The very estimate the items themselves give.
    record = ledger.require("big")
    from_items = cost.work_of(step_items(ledger, record))
    assert record.work == pytest.approx(from_items)


def test_jobs_with_costs_reads_no_items(
    clients: Clients, resources: Resources, ledger: Admin
) -> None:
    finished_job(ledger, "small", 2)
    with counting(clients) as few:
        list_jobs(clients, resources, costs=True)
    finished_job(ledger, "big", 200)
    with counting(clients) as more:
        rows = list_jobs(clients, resources, costs=True)
    assert few == more == ["dynamodb.Query"]  # the jobs-by-time index
    assert {r["job_id"] for r in rows} == {"small", "big"}
    assert all(r["cost_usd"] > 0 for r in rows)


def test_a_job_with_failed_chunks_lists_them(
    clients: Clients, resources: Resources, ledger: Admin
) -> None:
    finished_job(ledger, "j", 10, failed=2)
    status = job_status(clients, resources, "j")
    assert status.state is JobState.FAILED
    assert status.failed == 2
    assert [(c["chunk"], c["attempts"], c["last_error"]) for c in status.failed_chunks] == [
        (0, 3, "ValueError: bad"),
        (1, 3, "ValueError: bad"),
    ]
    assert status.cost is not None and status.cost.task_s == pytest.approx(8 * 0.5)


def test_a_cancelled_job_lists_a_chunk_that_failed_after_the_cancel(
    clients: Clients, resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, "c", 3)
    ledger.cancel("c")
    # A worker that held chunk 1 when the job was cancelled fails on it.
    ledger.record_failure(
        "c", ItemKey.chunk(1), attempts=5, error="TimeLimit: 1800 s", worker_id="w", final=True
    )
    status = job_status(clients, resources, "c")
    assert status.state is JobState.CANCELLED
    assert [(c["chunk"], c["last_error"]) for c in status.failed_chunks] == [
        (1, "TimeLimit: 1800 s")
    ]


def test_a_job_from_before_the_sums_is_costed_from_its_items(
    clients: Clients, resources: Resources, ledger: Admin
) -> None:
    finished_job(ledger, "old", 5)
    # As a job item written before the sums were kept: none of them.
    key = ledger.table.key("old", "JOB")
    clients.dynamodb.update_item(
        TableName=resources.table,
        Key=key,
        UpdateExpression=(
            "REMOVE work_tallied, work_map_s, work_chunks, work_reduce_s, work_partitions"
        ),
    )
    assert ledger.require("old").work is None
    status = job_status(clients, resources, "old")
    assert status.cost is not None
    assert status.cost.task_s == pytest.approx(5 * 0.5 + 2.0)
    (row,) = list_jobs(clients, resources, costs=True)
    assert row["cost_usd"] == pytest.approx(status.cost.fargate_usd)


def test_the_sums_count_a_chunk_once_whatever_its_deliveries(ledger: Admin) -> None:
    finished_job(ledger, "j", 3)
    for n in range(3):
        late = ledger.complete("j", ItemKey.chunk(n), attempts=2, worker="w2", map_seconds=9.0)
        assert late in (Outcome.DUPLICATE, Outcome.RETRIGGER)
    assert ledger.require("j").work == Work(map_s=1.5, chunks=3, reduce_s=2.0, partitions=1)
