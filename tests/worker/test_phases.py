"""The MapReduce handler in process, on moto: the verdict for each kind of
message, and what it leaves in S3, the ledger and the reduce queue."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest

from submit.clients import Clients
from submit.recovery import retry
from submit.resources import Resources
from submit.tracking import fetch_result, job_status
from tests.conftest import counting, reference_wordcount
from worker import names, records, storage
from worker.consumer import DeadLetter, Delete, Delivery, Retry
from worker.jobs import Job, register
from worker.jobs.topwords import TopWords
from worker.ledger import ItemKey, ItemState, JobState, Phase
from worker.ledger.admin import Admin
from worker.messages import MapTask, Piece, ReduceTask, to_json
from worker.names import MAP_OUTPUT_TAG_KEY, MAP_OUTPUT_TAG_VALUE
from worker.phases import BACKOFF_BASE_S, JOB_STATE_TTL_S, MapReduce
from worker.wiring import build_handler

TEXT = b"the cat\nthe hat\n"


@register
class Flaky(Job):
    """Fails every map: a transient error as far as the worker can tell."""

    name = "test-phases-flaky"

    def mapper(self, line: str, params: dict[str, Any]) -> Any:
        raise RuntimeError("flaky disk")

    def reducer(self, key: str, values: Any) -> Any:
        return sum(values)


@pytest.fixture
def ledger(clients: Clients, resources: Resources) -> Admin:
    return clients.ledger(resources)


def new_job(
    ledger: Admin, resources: Resources, *, expected: int = 1, job: str = "wordcount"
) -> str:
    ledger.create_job(
        job_id="j",
        job=job,
        params={},
        partitions=1,
        expected=expected,
        bucket=resources.bucket,
        inputs=1,
        input_bytes=len(TEXT),
        max_failures=0,
    )
    return "j"


def map_task(
    resources: Resources, chunk: int = 0, *, job: str = "wordcount", key: str = "in.txt"
) -> MapTask:
    size = len(TEXT)
    piece = Piece(key=key, name="in.txt", index=0, base=0, size=size, start=0, end=size)
    return MapTask(
        job_id="j",
        chunk=chunk,
        job=job,
        params={},
        partitions=1,
        bucket=resources.bucket,
        pieces=(piece,),
    )


def delivery(body: str, receives: int = 1, last: bool = False) -> Delivery:
    return Delivery(message_id="m", body=body, receives=receives, last_receive=last)


@pytest.fixture
def handler(clients: Clients, resources: Resources, ledger: Admin) -> Callable[[Phase], MapReduce]:
    clients.s3.put_object(Bucket=resources.bucket, Key="in.txt", Body=TEXT)

    def make(phase: Phase) -> MapReduce:
        return MapReduce(
            phase=phase,
            s3=clients.s3,
            ledger=ledger,
            worker_id="w",
            sqs=clients.sqs,
            reduce_queue_url=resources.reduce_queue_url,
            map_queue_url=resources.map_queue_url,
        )

    return make


def reduce_messages(clients: Clients, resources: Resources) -> list[dict[str, Any]]:
    return messages(clients, resources.reduce_queue_url)


def messages(clients: Clients, url: str) -> list[dict[str, Any]]:
    got = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_a_map_task_writes_its_output_counts_once_and_starts_the_reduce(
    handler: Callable[[Phase], MapReduce], clients: Clients, resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, resources)
    body = to_json(map_task(resources))
    with counting(clients) as calls:
        assert handler(Phase.MAP).handle(delivery(body)) == Delete("done")
    # The job's state, the input, the output; the counting transaction is
    # refused (this is the last chunk), the job is read, the last one's goes
    # through, and the reduce is sent with what that read said: the job is
    # not read again for it.
    assert calls == [
        "dynamodb.GetItem",
        "s3.GetObject",
        "s3.PutObject",
        "dynamodb.TransactWriteItems",
        "dynamodb.GetItem",
        "dynamodb.TransactWriteItems",
        "sqs.SendMessageBatch",
    ]
    output = storage.get_object(clients.s3, resources.bucket, storage.map_key("j", 0, 0))
    assert dict(records.decode([output])) == reference_wordcount({"in.txt": TEXT})
    job = ledger.require("j")
    assert (job.state, job.done) == (JobState.REDUCING, 1)
    (reduce,) = reduce_messages(clients, resources)
    assert (reduce["kind"], reduce["partition"], reduce["chunks"]) == ("reduce", 0, 1)
    # Delivered again: counted once, and the reduce is asked for again, as a
    # worker that died before sending it would need.
    assert handler(Phase.MAP).handle(delivery(body, receives=2)) == Delete("done")
    assert ledger.require("j").done == 1
    assert len(reduce_messages(clients, resources)) == 1


def test_a_reduce_task_finalizes_the_job(
    handler: Callable[[Phase], MapReduce], clients: Clients, resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, resources)
    handler(Phase.MAP).handle(delivery(to_json(map_task(resources))))
    task = ReduceTask(
        job_id="j",
        partition=0,
        job="wordcount",
        params={},
        partitions=1,
        chunks=1,
        bucket=resources.bucket,
    )
    with counting(clients) as calls:
        assert handler(Phase.REDUCE).handle(delivery(to_json(task))) == Delete("done")
    job = ledger.require("j")
    assert job.state is JobState.SUCCEEDED
    assert job.summary == {
        "total": 4,
        "distinct": 3,
        "top": [["the", 2], ["cat", 1], ["hat", 1]],
        "names": ["words", "distinct words"],
    }
    # A job of one partition: its reducer counts it as the last one at the
    # first try and finalizes the job with its own summary, reading the job
    # once (its state) and no other partition's summary.
    assert calls == [
        "dynamodb.GetItem",
        "s3.GetObject",
        "s3.PutObject",
        "dynamodb.TransactWriteItems",
        "dynamodb.UpdateItem",
    ]
    part = storage.get_object(clients.s3, resources.bucket, storage.result_key("j", 0))
    assert dict(records.decode([part])) == reference_wordcount({"in.txt": TEXT})


def test_a_worker_busy_with_a_job_reads_its_state_once_and_still_sees_a_cancel(
    handler: Callable[[Phase], MapReduce], clients: Clients, resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, resources, expected=4)
    now = [0.0]
    worker = handler(Phase.MAP)
    worker.states.clock = lambda: now[0]
    reads = 0
    for chunk in range(3):
        with counting(clients) as calls:
            assert worker.handle(delivery(to_json(map_task(resources, chunk)))) == Delete("done")
        reads += calls.count("dynamodb.GetItem")
        # Each chunk ends more than the state's lifetime after the first read.
        now[0] += JOB_STATE_TTL_S * 0.9
    # Each counted chunk proved the job open: only the first chunk read it.
    assert reads == 1
    ledger.cancel("j")
    # Past the lifetime of what the last completion proved, the cancel shows.
    now[0] += JOB_STATE_TTL_S
    assert worker.handle(delivery(to_json(map_task(resources, 3)))) == Delete("dropped")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "BadMessage: not JSON"),
        (json.dumps({"version": 99}), "BadMessage: unknown schema version 99"),
        ("REDUCE", "BadMessage: a reduce task on the map queue"),
        ("GHOST", "UnknownJob: job ghost has no job item"),
    ],
)
def test_messages_no_worker_can_use_are_dead_lettered_at_once(
    handler: Callable[[Phase], MapReduce],
    resources: Resources,
    ledger: Admin,
    body: str,
    reason: str,
) -> None:
    new_job(ledger, resources)
    if body == "REDUCE":
        body = to_json(ReduceTask("j", 0, "wordcount", {}, 1, 1, resources.bucket))
    elif body == "GHOST":
        body = to_json(map_task(resources)).replace('"job_id":"j"', '"job_id":"ghost"')
    verdict = handler(Phase.MAP).handle(delivery(body))
    assert isinstance(verdict, DeadLetter) and verdict.reason.startswith(reason)


def test_a_missing_input_is_permanent_and_fails_the_job(
    handler: Callable[[Phase], MapReduce], resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, resources)
    verdict = handler(Phase.MAP).handle(delivery(to_json(map_task(resources, key="gone.txt"))))
    assert isinstance(verdict, DeadLetter) and verdict.reason.startswith("MissingObject")
    item = ledger.item("j", ItemKey.chunk(0))
    assert item is not None and item.state is ItemState.FAILED
    assert ledger.require("j").state is JobState.FAILED


@pytest.mark.parametrize(
    "body", [b"not gzip at all\n", gzip.compress(b"cut short " * 1000)[:-20]], ids=["fake", "cut"]
)
def test_a_gz_input_that_is_not_whole_gzip_is_permanent(
    handler: Callable[[Phase], MapReduce],
    clients: Clients,
    resources: Resources,
    ledger: Admin,
    body: bytes,
) -> None:
    clients.s3.put_object(Bucket=resources.bucket, Key="x.gz", Body=body)
    new_job(ledger, resources)
    piece = Piece(
        key="x.gz", name="x.gz", index=0, base=0, size=len(body), start=0, end=len(body), gzip=True
    )
    task = replace(map_task(resources), pieces=(piece,))
    verdict = handler(Phase.MAP).handle(delivery(to_json(task)))
    assert isinstance(verdict, DeadLetter)
    assert verdict.reason.startswith("CorruptInput: x.gz: not a whole gzip file")
    assert ledger.require("j").state is JobState.FAILED


def test_a_transient_error_backs_off_then_fails_for_good_on_the_last_receive(
    handler: Callable[[Phase], MapReduce], resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, resources, job=Flaky.name)
    body = to_json(map_task(resources, job=Flaky.name))
    worker = handler(Phase.MAP)
    assert worker.handle(delivery(body, receives=1)) == Retry(BACKOFF_BASE_S)
    assert worker.handle(delivery(body, receives=2)) == Retry(BACKOFF_BASE_S * 2)
    item = ledger.item("j", ItemKey.chunk(0))
    assert item is not None and (item.state, item.attempts) == (ItemState.RETRYING, 2)
    final = worker.handle(delivery(body, receives=3, last=True))
    assert final == DeadLetter("RuntimeError: flaky disk")
    assert ledger.require("j").state is JobState.FAILED


def test_messages_of_a_stopped_job_are_deleted_unread(
    handler: Callable[[Phase], MapReduce], clients: Clients, resources: Resources, ledger: Admin
) -> None:
    new_job(ledger, resources, expected=2)
    ledger.cancel("j")
    # The input is gone too: a job that takes no more work is not even read.
    clients.s3.delete_object(Bucket=resources.bucket, Key="in.txt")
    assert handler(Phase.MAP).handle(delivery(to_json(map_task(resources)))) == Delete("dropped")
    assert ledger.require("j").done == 0


def test_work_stopped_from_outside_counts_as_a_failed_attempt(
    handler: Callable[[Phase], MapReduce], resources: Resources, ledger: Admin
) -> None:
    """What the worker asks while a message runs in its work process
    (worker.isolation): is the work still wanted, and how an attempt it
    stopped is recorded."""
    new_job(ledger, resources)
    body = to_json(map_task(resources))
    worker = handler(Phase.MAP)
    assert worker.abandoned(delivery(body)) is None
    error = "TimeLimit: still running after 1800 s"
    assert worker.stopped(delivery(body, receives=1), error) == Retry(BACKOFF_BASE_S)
    item = ledger.item("j", ItemKey.chunk(0))
    assert item is not None
    assert (item.state, item.attempts, item.last_error) == (ItemState.RETRYING, 1, error)
    assert worker.stopped(delivery(body, receives=5, last=True), error) == DeadLetter(error)
    assert ledger.require("j").state is JobState.FAILED
    # The job failed: work on its other messages is no longer wanted.
    assert worker.abandoned(delivery(body)) == Delete("dropped")


def test_the_last_reduce_of_a_step_starts_the_next_and_a_duplicate_resends_it(
    handler: Callable[[Phase], MapReduce], clients: Clients, resources: Resources, ledger: Admin
) -> None:
    ledger.create_job(
        job_id="j",
        job="top-words",
        params={"n": 2},
        partitions=3,
        expected=1,
        bucket=resources.bucket,
        inputs=1,
        input_bytes=len(TEXT),
        max_failures=0,
        step_partitions=[3, 1],
        chunk_size_bytes=1 << 20,
    )
    task = MapTask(**{**map_task(resources, job="top-words").__dict__, "params": {"n": 2}})
    task = MapTask(**{**task.__dict__, "partitions": 3})
    assert handler(Phase.MAP).handle(delivery(to_json(task))) == Delete("done")
    reducer = handler(Phase.REDUCE)
    reduces = reduce_messages(clients, resources)
    assert sorted(r["partition"] for r in reduces) == [0, 1, 2]
    for r in reduces:
        assert reducer.handle(delivery(json.dumps(r))) == Delete("done")
    job = ledger.require("j")
    # One chunk per partition result with any record in it.
    sent = messages(clients, resources.map_queue_url)
    assert (job.step, job.state, job.partitions) == (1, JobState.RUNNING, 1)
    assert job.expected == len(sent) >= 2
    assert all((m["step"], m["partitions"]) == (1, 1) for m in sent)
    # The reducer that moved the job on might have died before it sent the
    # chunks: its partition, delivered again, sends them again.
    assert reducer.handle(delivery(json.dumps(reduces[-1]), receives=2)) == Delete("done")
    again = messages(clients, resources.map_queue_url)
    assert sorted(m["chunk"] for m in again) == sorted(m["chunk"] for m in sent)
    mapper = handler(Phase.MAP)
    for chunk in {m["chunk"]: m for m in [*sent, *again]}.values():
        assert mapper.handle(delivery(json.dumps(chunk))) == Delete("done")
    (last,) = reduce_messages(clients, resources)
    assert (last["step"], last["partition"]) == (1, 0)
    assert reducer.handle(delivery(json.dumps(last))) == Delete("done")
    assert ledger.require("j").state is JobState.SUCCEEDED
    assert fetch_result(clients, resources, "j") == {"the": 2, "cat": 1}

    # The first step's results are intermediate, tagged to expire with the
    # map outputs (and the only results map workers may read); the job's
    # result, the last step's, is not.
    def tags(key: str) -> list[dict[str, str]]:
        tag_set: list[dict[str, str]] = clients.s3.get_object_tagging(
            Bucket=resources.bucket, Key=key
        )["TagSet"]
        return tag_set

    for r in range(3):
        assert tags(storage.result_key("j", r, 0)) == [
            {"Key": MAP_OUTPUT_TAG_KEY, "Value": MAP_OUTPUT_TAG_VALUE}
        ]
    assert tags(storage.result_key("j", 0, 1)) == []
    # Every step's work is in what the job cost: each chunk's map_seconds and
    # each partition's reduce_seconds, the first step's and the second's.
    items = [
        item for step in (0, 1) for phase in Phase for item in ledger.items("j", phase, step=step)
    ]
    assert {(i.key.step, i.key.phase) for i in items} == {
        (step, phase) for step in (0, 1) for phase in Phase
    }
    seconds = [i.map_seconds if i.key.phase is Phase.MAP else i.reduce_seconds for i in items]
    assert all(s is not None for s in seconds)
    cost = job_status(clients, resources, "j").cost
    assert cost is not None
    assert cost.task_s == pytest.approx(sum(s for s in seconds if s is not None))
    # A late copy of a first-step chunk changes nothing.
    assert handler(Phase.MAP).handle(delivery(to_json(task), receives=3)) == Delete("duplicate")


def test_the_reducer_that_starts_a_step_wakes_the_map_fleet(
    clients: Clients, resources: Resources, ledger: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the one wake path (worker.ecs.Waker), as the reducers' task
    definition sets it up: the map service's desired count goes to the
    next step's chunk count, up to its maximum, without waiting for the
    queue alarm."""
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="drover")
    ecs.register_task_definition(
        family="map", containerDefinitions=[{"name": "Worker", "image": "worker", "memory": 2048}]
    )
    ecs.create_service(cluster="drover", serviceName="Drover-map", taskDefinition="map")
    for name, value in {
        names.ENV_TABLE: resources.table,
        names.ENV_MAP_QUEUE_URL: resources.map_queue_url,
        names.ENV_REDUCE_QUEUE_URL: resources.reduce_queue_url,
        names.ENV_CLUSTER: "drover",
        names.ENV_MAP_SERVICE: "Drover-map",
        names.ENV_MAP_MAX_TASKS: "8",
    }.items():
        monkeypatch.setenv(name, value)
    clients.s3.put_object(Bucket=resources.bucket, Key="in.txt", Body=TEXT)
    ledger.create_job(
        job_id="j",
        job="top-words",
        params={"n": 2},
        partitions=3,
        expected=1,
        bucket=resources.bucket,
        inputs=1,
        input_bytes=len(TEXT),
        max_failures=0,
        step_partitions=[3, 1],
        chunk_size_bytes=1 << 20,
    )
    task = MapTask(**{**map_task(resources, job="top-words").__dict__, "params": {"n": 2}})
    task = MapTask(**{**task.__dict__, "partitions": 3})
    assert build_handler(Phase.MAP, "m").handle(delivery(to_json(task))) == Delete("done")
    reducer = build_handler(Phase.REDUCE, "r")
    assert reducer.wake_mappers is not None
    for r in reduce_messages(clients, resources):
        assert reducer.handle(delivery(json.dumps(r))) == Delete("done")
    chunks = ledger.require("j").expected
    assert chunks >= 2
    (service,) = ecs.describe_services(cluster="drover", services=["Drover-map"])["services"]
    assert service["desiredCount"] == chunks


SECOND_STEP_FAILS = {"now": True}


@register
class SecondStepFails(TopWords):
    """top-words whose second step fails while SECOND_STEP_FAILS says so."""

    name = "test-phases-second-step-fails"

    def map_chunk(self, step: int, pieces: Any, partitions: int) -> Any:
        if step == 1 and SECOND_STEP_FAILS["now"]:
            raise RuntimeError("second step broken")
        return super().map_chunk(step, pieces, partitions)


def test_a_job_that_fails_in_its_second_step_is_retried_in_it(
    handler: Callable[[Phase], MapReduce], clients: Clients, resources: Resources, ledger: Admin
) -> None:
    job = "test-phases-second-step-fails"
    ledger.create_job(
        job_id="j",
        job=job,
        params={"n": 1},
        partitions=1,
        expected=1,
        bucket=resources.bucket,
        inputs=1,
        input_bytes=len(TEXT),
        max_failures=0,
        step_partitions=[1, 1],
        chunk_size_bytes=1 << 20,
    )
    task = MapTask(**{**map_task(resources, job=job).__dict__, "params": {"n": 1}})
    handler(Phase.MAP).handle(delivery(to_json(task)))
    (reduce,) = reduce_messages(clients, resources)
    handler(Phase.REDUCE).handle(delivery(json.dumps(reduce)))
    (chunk,) = messages(clients, resources.map_queue_url)
    verdict = handler(Phase.MAP).handle(delivery(json.dumps(chunk), receives=3, last=True))
    assert verdict == DeadLetter("RuntimeError: second step broken")
    failed = ledger.require("j")
    assert (failed.state, failed.step) == (JobState.FAILED, 1)
    assert [i.key for i in ledger.items("j", Phase.MAP, ItemState.FAILED, step=1)] == [
        ItemKey.chunk(0, step=1)
    ]
    SECOND_STEP_FAILS["now"] = False
    try:
        resumed = retry(clients, resources, "j")
        assert (resumed.phase, resumed.resent) == ("map", [0])
        (again,) = messages(clients, resources.map_queue_url)
        assert again == chunk, "the step's chunk, from its stored plan"
        assert handler(Phase.MAP).handle(delivery(json.dumps(again))) == Delete("done")
        (last,) = reduce_messages(clients, resources)
        assert handler(Phase.REDUCE).handle(delivery(json.dumps(last))) == Delete("done")
    finally:
        SECOND_STEP_FAILS["now"] = True
    assert ledger.require("j").state is JobState.SUCCEEDED
    assert fetch_result(clients, resources, "j") == {"the": 2}
