"""Every command that queues work asks for its workers, once the work is
queued: run, a job of no chunks, retry, and the deployed stack's maxima."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from submit import recovery
from submit.clients import Clients
from submit.resources import Resources
from submit.submission import submit_job
from submit.target import deployed_wake
from tests.worker.test_ecs import FakeEcs
from worker.ledger import ItemKey


class Recorder:
    """A wake that notes what was asked for and how deep each queue was."""

    def __init__(self, clients: Clients, resources: Resources) -> None:
        self.clients = clients
        self.resources = resources
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, fleet: str, need: int) -> None:
        url = self.resources.map_queue_url if fleet == "map" else self.resources.reduce_queue_url
        attrs = self.clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        self.calls.append((str(fleet), need, int(attrs["ApproximateNumberOfMessages"])))


def submit(
    clients: Clients, resources: Resources, inputs: list[str], wake: Any, partitions: int = 1
) -> str:
    return submit_job(
        clients,
        resources,
        inputs=inputs,
        job="wordcount",
        params={},
        chunk_size_bytes=64,
        partitions=partitions,
        wake=wake,
    ).job_id


def test_run_wakes_the_map_fleet_once_the_chunks_are_queued(
    clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    path = tmp_path / "in.txt"
    path.write_text("some words here\n" * 20)
    wake = Recorder(clients, resources)
    submit(clients, resources, [str(path)], wake)
    ((fleet, need, queued),) = wake.calls
    assert fleet == "map" and need > 1
    # Asked for after the upload and the enqueue, never before.
    assert queued == need


def test_a_job_of_no_chunks_wakes_a_reducer_per_partition(
    clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    wake = Recorder(clients, resources)
    submit(clients, resources, [str(empty)], wake, partitions=3)
    assert wake.calls == [("reduce", 3, 3)]


def test_retry_wakes_the_fleet_for_what_it_sends_again(
    clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    path = tmp_path / "in.txt"
    path.write_text("some words here\n" * 20)
    job_id = submit(clients, resources, [str(path)], None)
    ledger = clients.ledger(resources)
    chunks = ledger.require(job_id).expected
    # The workers dropped what was left of the failed job.
    clients.sqs.purge_queue(QueueUrl=resources.map_queue_url)
    assert ledger.record_failure(
        job_id, ItemKey.chunk(0), attempts=3, error="RuntimeError: x", worker_id="w", final=True
    )
    wake = Recorder(clients, resources)
    resumed = recovery.retry(clients, resources, job_id, wake=wake)
    assert len(resumed.resent) == chunks
    assert wake.calls == [("map", chunks, chunks)]


def test_a_deployed_wake_is_bounded_by_the_stacks_own_maxima() -> None:
    resources = Resources(
        bucket="b",
        table="t",
        map_queue_url="m",
        map_dlq_url="md",
        reduce_queue_url="r",
        reduce_dlq_url="rd",
        cluster="c",
        map_service="maps",
        reduce_service="reduces",
        map_max_tasks=3,
        reduce_max_tasks=1,
    )
    ecs = FakeEcs()
    wake = deployed_wake(ecs, resources)
    assert wake is not None
    wake("map", 100)
    assert ecs.updates == [3]
    ecs.desired = 0
    wake("reduce", 4)
    assert ecs.updates == [3, 1]
