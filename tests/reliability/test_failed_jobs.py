"""Jobs that fail, stop early or are cancelled, and come back with retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from submit import dlq, recovery
from submit.local import LocalDrover, LocalOptions
from submit.tracking import fetch_result, job_status, wait_for
from tests.conftest import reference_wordcount
from tests.reliability.conftest import JOB_MODULES, log_lines, until, write_corpus
from worker import storage
from worker.ledger import ItemKey, ItemState, JobState, Phase
from worker.ledger.admin import JobStateError
from worker.messages import from_json
from worker.settings import Settings

CANCELLED = JobState.CANCELLED

POISON = "test-poison-wordcount"


def poisoned_corpus(root: Path, *, poisoned: int, clean: int) -> dict[str, bytes]:
    """Clean files, and files whose first line holds POISON; the poisoned
    ones sort first, and each is longer than a chunk, so that each first
    line is in a chunk of its own."""
    files = write_corpus(root / "clean", files=clean, lines=40, seed=21)
    for n in range(poisoned):
        path = root / f"a-poison-{n}.txt"
        path.write_bytes(b"POISON pill\n" + b"alpha beta\n" * 80)
        files[str(path)] = path.read_bytes()
    return files


def poisoned_chunks(s3, bucket: str, job_id: str) -> set[int]:
    plan = storage.get_json(s3, bucket, storage.plan_key(job_id))
    return {
        n
        for n, task in enumerate(plan["chunks"])
        for piece in from_json(json.dumps(task)).pieces
        if "a-poison-" in piece.name and piece.start == 0
    }


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[LocalDrover]:
    options = LocalOptions(
        max_workers=2,
        max_reducers=1,
        settings=Settings(visibility_timeout_s=5, max_receive_count=3),
        idle_s=3,
        poll_s=0.5,
        log_dir=tmp_path / "logs",
        extra_env={"DROVER_JOB_MODULES": JOB_MODULES, "DROVER_RECEIVE_WAIT_S": "1"},
    )
    with LocalDrover(options) as drover:
        yield drover


def test_a_poison_chunk_fails_the_job_and_retry_finishes_it(
    fleet: LocalDrover, tmp_path: Path
) -> None:
    assert fleet.resources is not None
    clients, resources = fleet.clients(), fleet.resources
    marker = tmp_path / "poisoned"
    marker.touch()
    files = poisoned_corpus(tmp_path / "in", poisoned=1, clean=6)
    # One failure allowed: the job goes on with the others and fails once
    # they are all done, naming the one that is not.
    submitted = recovery_submit(clients, resources, files, marker, max_failures=1)
    (poisoned,) = poisoned_chunks(clients.s3, resources.bucket, submitted)

    status = wait_for(clients, resources, submitted, timeout_s=180, max_poll_s=0.3)
    assert status.state == "FAILED", status
    assert status.done == status.expected - 1
    (failed,) = status.failed_chunks
    assert failed["chunk"] == poisoned
    assert failed["attempts"] == resources_max_receive_count(fleet)
    assert failed["last_error"] == "RuntimeError: poisoned chunk"
    assert failed["worker"].startswith("local-map-")
    assert "every other chunk is done" in (status.error or "")

    (letter,) = dlq.list_dead_letters(clients, resources, job_id=submitted)
    assert (letter.item, letter.receives) == (ItemKey.chunk(poisoned), 3)
    assert letter.error == "RuntimeError: poisoned chunk"

    marker.unlink()
    resumed = recovery.retry(clients, resources, submitted)
    assert (resumed.from_state, resumed.to_state, resumed.resent) == (
        "FAILED",
        "RUNNING",
        [poisoned],
    )
    assert resumed.dead_letters_removed == 1
    status = wait_for(clients, resources, submitted, timeout_s=180, max_poll_s=0.3)
    assert status.state == "SUCCEEDED", status
    assert status.failed_chunks == []
    assert fetch_result(clients, resources, submitted) == reference_wordcount(files)
    assert dlq.list_dead_letters(clients, resources) == []


def recovery_submit(clients, resources, files, marker: Path, *, max_failures: int) -> str:
    from submit.submission import submit_job

    return submit_job(
        clients,
        resources,
        inputs=sorted(files),
        job=POISON,
        params={"marker": str(marker)},
        chunk_size_bytes=700,
        partitions=2,
        max_failures=max_failures,
    ).job_id


def resources_max_receive_count(fleet: LocalDrover) -> int:
    return fleet.settings.max_receive_count


def test_max_failures_stops_the_job_early_and_retry_resends_the_rest(
    make_stack, tmp_path: Path
) -> None:
    # maxReceiveCount 1: a failure is final at once.
    stack = make_stack(max_receive_count=1)
    marker = tmp_path / "poisoned"
    marker.touch()
    files = poisoned_corpus(tmp_path / "in", poisoned=4, clean=8)
    job_id = recovery_submit(stack.clients, stack.resources, files, marker, max_failures=1)
    expected = stack.ledger.require(job_id).expected
    assert len(poisoned_chunks(stack.clients.s3, stack.resources.bucket, job_id)) == 4
    # One worker: every message passes through the same hands, in turn.
    worker, log = stack.worker("map")

    status = stack.wait(job_id)
    assert status.state == "FAILED"
    assert "2 chunk(s) failed, more than the 1 allowed" in (status.error or "")
    assert len(status.failed_chunks) == 2
    until(
        lambda: stack.depth(stack.resources.map_queue_url) == (0, 0),
        timeout_s=60,
        what="the rest of the job dropped",
    )
    status = job_status(stack.clients, stack.resources, job_id)
    # Stopped early: the other two poisoned chunks, at least, never ran.
    assert status.done + len(status.failed_chunks) <= expected - 2
    items = stack.ledger.items(job_id, Phase.MAP)
    assert sum(i.state is ItemState.DONE for i in items) == status.done
    assert sum(i.state is ItemState.FAILED for i in items) == 2
    assert len(items) == status.done + 2, "a dropped chunk left a record"
    assert any("job FAILED, dropped unread" in line for line in log_lines(log))

    marker.unlink()
    resumed = recovery.retry(stack.clients, stack.resources, job_id)
    assert len(resumed.resent) == expected - status.done
    stack.worker("reduce")
    assert stack.wait(job_id).state == "SUCCEEDED"
    assert fetch_result(stack.clients, stack.resources, job_id) == reference_wordcount(files)
    assert worker.poll() is None


def test_cancel_drops_the_remaining_chunks_uncounted(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    files = write_corpus(tmp_path / "in", files=8, lines=40, seed=5)
    job_id = stack.submit(
        list(files), "test-slow-wordcount", {"seconds": 0.25}, chunk_size_bytes=300
    )
    expected = stack.ledger.require(job_id).expected
    assert expected >= 30
    _, log = stack.worker("map")
    until(
        lambda: stack.ledger.require(job_id).done >= 3,
        timeout_s=120,
        what="a few chunks done",
    )
    cancelled = recovery.cancel(stack.clients, stack.resources, job_id)
    assert (cancelled["from_state"], cancelled["state"]) == ("RUNNING", CANCELLED)

    until(
        lambda: stack.depth(stack.resources.map_queue_url) == (0, 0),
        timeout_s=120,
        what="the cancelled job's messages dropped",
    )
    status = job_status(stack.clients, stack.resources, job_id)
    assert status.state == CANCELLED
    # A chunk in hand when the job was cancelled may still have counted.
    assert status.done <= cancelled["done"] + 1 < expected
    done_items = stack.ledger.items(job_id, Phase.MAP, ItemState.DONE)
    assert len(done_items) == status.done
    assert any("job CANCELLED, dropped unread" in line for line in log_lines(log))
    with pytest.raises(JobStateError, match="cancelled"):
        recovery.retry(stack.clients, stack.resources, job_id)
