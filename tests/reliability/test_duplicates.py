"""At least once, counted once: every chunk message three times over and
the reduce triggered twice still give the reference result."""

from __future__ import annotations

import json
from pathlib import Path

from submit.tracking import fetch_result, job_status
from tests.conftest import reference_wordcount
from tests.reliability.conftest import log_lines, write_corpus
from worker import storage
from worker.ledger import ItemState, JobState, Phase
from worker.queues import send_batches
from worker.triggers import trigger_reduce


def test_three_copies_of_every_chunk_and_two_reduce_triggers(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    files = write_corpus(tmp_path / "in", files=4, lines=80, seed=7)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=600, partitions=3)
    plan = storage.get_json(stack.clients.s3, stack.resources.bucket, storage.plan_key(job_id))
    chunks = len(plan["chunks"])
    assert chunks >= 8
    for _ in range(2):
        bodies = (json.dumps(t, separators=(",", ":")) for t in plan["chunks"])
        send_batches(stack.clients.sqs, stack.resources.map_queue_url, bodies)

    maps = [stack.worker("map", burst=True) for _ in range(2)]
    for proc, _ in maps:
        assert proc.wait(timeout=180) == 0
    job = stack.ledger.job(job_id)
    assert job is not None
    assert (job.state, job.done, job.expected) == (JobState.REDUCING, chunks, chunks)

    # The reduce, triggered by the last chunk, triggered once more.
    trigger_reduce(stack.clients.sqs, stack.resources.reduce_queue_url, job)
    reducer, reduce_log = stack.worker("reduce", burst=True)
    assert reducer.wait(timeout=180) == 0

    status = job_status(stack.clients, stack.resources, job_id)
    assert status.state == "SUCCEEDED"
    assert (status.done, status.reduced) == (chunks, 3)
    assert fetch_result(stack.clients, stack.resources, job_id) == reference_wordcount(files)
    items = stack.ledger.items(job_id, Phase.MAP)
    assert [i.key.number for i in items] == list(range(chunks))
    assert all(i.state is ItemState.DONE for i in items)

    map_lines = log_lines(*(log for _, log in maps))
    counted = [line for line in map_lines if ": counted in" in line or ": last in" in line]
    repeats = [line for line in map_lines if ": duplicate in" in line or ": retrigger in" in line]
    assert len(counted) == chunks
    assert len(repeats) >= 2 * chunks
    reduce_lines = log_lines(reduce_log)
    assert sum(": counted in" in x or ": last in" in x for x in reduce_lines) == 3
    assert sum(": duplicate in" in x or ": retrigger in" in x for x in reduce_lines) >= 3
