"""No message held forever: work past the time limit is stopped and counted
as a failure, and `cancel` stops work in hand within seconds. Real workers,
at the queue settings a user gets (300 s visibility timeout, 5 receives)."""

from __future__ import annotations

import time
from pathlib import Path

from submit import dlq
from submit.recovery import retry
from submit.tracking import fetch_result
from tests.conftest import reference_top_words, reference_wordcount
from tests.reliability.conftest import Stack, log_lines, until, write_corpus
from worker import names
from worker.ledger import ItemKey, ItemState, JobState, Phase
from worker.phases import JOB_STATE_TTL_S
from worker.settings import Settings

DEFAULTS = Settings()
# A grep pattern with catastrophic backtracking: it compiles, and a line of
# 40 a's and a b takes it hours (each two more a's, four times longer).
CATASTROPHIC = "(a+)+$"
SLOW = "test-slow-wordcount"
HELD_STEPS = "test-held-top-words"
CHUNK = 1 << 20


def default_stack(make_stack) -> Stack:
    stack: Stack = make_stack(
        visibility_timeout_s=DEFAULTS.visibility_timeout_s,
        max_receive_count=DEFAULTS.max_receive_count,
    )
    return stack


def chunk_error(stack: Stack, job_id: str) -> tuple[ItemState, int, str] | None:
    item = stack.ledger.item(job_id, ItemKey.chunk(0))
    if item is None or item.last_error is None:
        return None
    return item.state, item.attempts, item.last_error


def test_a_catastrophic_pattern_is_stopped_at_the_limit_and_ends_in_the_dlq(
    make_stack, tmp_path: Path
) -> None:
    stack = default_stack(make_stack)
    # The limit is what this test is about, and at its default of 30 minutes
    # a test would wait 2.5 hours for five receives: 2 s each instead.
    limit_s = 2
    worker, log = stack.worker("map", env={names.ENV_MAX_TASK_SECONDS: str(limit_s)})
    stack.worker("reduce")
    stuck = tmp_path / "stuck.txt"
    stuck.write_text("short line\n" + "a" * 40 + "b\n")
    regex_job = stack.submit(
        [str(stuck)], "grep", {"pattern": CATASTROPHIC}, chunk_size_bytes=CHUNK, partitions=1
    )

    first = until(
        lambda: chunk_error(stack, regex_job), timeout_s=60, what="the first stopped attempt"
    )
    state, attempts, error = first
    assert (state, attempts) == (ItemState.RETRYING, 1)
    assert error.startswith("TimeLimit: still running after 2 s")

    # The worker is not held by the stuck chunk: between its attempts it runs
    # another job to the end.
    files = write_corpus(tmp_path / "words", files=2, lines=30, seed=5)
    words_job = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=CHUNK, partitions=1)
    assert stack.wait(words_job, timeout_s=60).state == JobState.SUCCEEDED
    assert fetch_result(stack.clients, stack.resources, words_job) == reference_wordcount(files)

    # Every receive is stopped the same way; the last one sends the message
    # to the DLQ with the reason, and the job fails.
    status = stack.wait(regex_job, timeout_s=180)
    assert status.state == JobState.FAILED
    (failed,) = status.failed_chunks
    assert failed["attempts"] == DEFAULTS.max_receive_count
    assert failed["last_error"].startswith("TimeLimit:")
    (letter,) = dlq.list_dead_letters(stack.clients, stack.resources, queue="map")
    assert letter.job_id == regex_job and letter.error.startswith("TimeLimit:")
    assert stack.depth(stack.resources.map_queue_url) == (0, 0)
    assert worker.poll() is None, "the worker died"
    stops = [line for line in log_lines(log) if "TimeLimit: still running" in line]
    assert len(stops) == DEFAULTS.max_receive_count


def test_cancel_stops_work_in_hand_within_seconds(make_stack, tmp_path: Path) -> None:
    stack = default_stack(make_stack)
    hold = tmp_path / "hold"
    hold.touch()  # never removed: the chunk would sleep its full 300 s on it
    worker, log = stack.worker("map")
    files = write_corpus(tmp_path / "in", files=1, lines=20, seed=1)
    job_id = stack.submit(
        list(files), SLOW, {"seconds": 0, "hold": str(hold)}, chunk_size_bytes=CHUNK
    )
    until(
        lambda: any(": start" in line for line in log_lines(log)),
        timeout_s=60,
        what="the worker to start the chunk",
    )

    cancelled_at = time.monotonic()
    stack.ledger.cancel(job_id)
    until(
        lambda: stack.depth(stack.resources.map_queue_url) == (0, 0),
        timeout_s=30,
        what="the cancelled job's message to be deleted",
    )
    # The job's state is read at most every JOB_STATE_TTL_S.
    assert time.monotonic() - cancelled_at < JOB_STATE_TTL_S + 5
    assert any("work in hand stopped" in line for line in log_lines(log))
    job = stack.ledger.job(job_id)
    assert job is not None and job.state == JobState.CANCELLED and job.done == 0
    assert stack.ledger.items(job_id, Phase.MAP) == []

    # The worker is free at once: the next job runs while the hold remains.
    words = write_corpus(tmp_path / "words", files=2, lines=30, seed=2)
    words_job = stack.submit(list(words), "wordcount", {}, chunk_size_bytes=CHUNK, partitions=1)
    stack.worker("reduce")
    assert stack.wait(words_job, timeout_s=60).state == JobState.SUCCEEDED
    assert worker.poll() is None


def test_the_limit_stops_a_later_steps_reduce_and_retry_resumes_it(
    make_stack, tmp_path: Path
) -> None:
    """The limit holds for every message, whatever its phase and step: a
    second step's reduce that hangs is stopped, counted on that step's
    partition, and dead-lettered at its last receive; once the cause is
    gone, `retry` finishes the job in that step."""
    stack = make_stack(visibility_timeout_s=10, max_receive_count=2)
    hold = tmp_path / "hold"
    hold.touch()
    stack.worker("map")
    reducer, log = stack.worker("reduce", env={names.ENV_MAX_TASK_SECONDS: "2"})
    files = write_corpus(tmp_path / "in", files=2, lines=40, seed=21)
    job_id = stack.submit(
        list(files),
        HELD_STEPS,
        {"n": 3, "hold": str(hold), "phase": "reduce"},
        chunk_size_bytes=700,
        partitions=2,
    )
    status = stack.wait(job_id, timeout_s=120)
    assert (status.state, status.step) == (JobState.FAILED, 1)
    item = stack.ledger.item(job_id, ItemKey.partition(0, step=1))
    assert item is not None and (item.state, item.attempts) == (ItemState.FAILED, 2)
    assert item.last_error is not None and item.last_error.startswith("TimeLimit:")
    (letter,) = dlq.list_dead_letters(stack.clients, stack.resources, queue="reduce")
    assert letter.job_id == job_id and letter.error.startswith("TimeLimit:")
    assert reducer.poll() is None, "the worker died"

    hold.unlink()
    resumed = retry(stack.clients, stack.resources, job_id)
    assert (resumed.phase, resumed.resent) == ("reduce", [0])
    assert stack.wait(job_id, timeout_s=60).succeeded
    assert fetch_result(stack.clients, stack.resources, job_id) == reference_top_words(files, 3)
    stopped = [line for line in log_lines(log) if "failed" in line and "TimeLimit:" in line]
    assert any("step 2 partition 0 receive=1" in line for line in stopped)
    assert any("step 2 partition 0 receive=2" in line for line in stopped)


def test_cancel_stops_a_later_steps_map_in_hand(make_stack, tmp_path: Path) -> None:
    stack = default_stack(make_stack)
    hold = tmp_path / "hold"
    hold.touch()
    mapper, log = stack.worker("map")
    stack.worker("reduce")
    files = write_corpus(tmp_path / "in", files=1, lines=30, seed=22)
    job_id = stack.submit(
        list(files), HELD_STEPS, {"n": 3, "hold": str(hold)}, chunk_size_bytes=CHUNK
    )
    until(
        lambda: (
            (job := stack.ledger.job(job_id)) is not None
            and job.step == 1
            and stack.depth(stack.resources.map_queue_url)[1] > 0
        ),
        timeout_s=60,
        what="a chunk of the second step in the worker's hands",
    )
    cancelled_at = time.monotonic()
    stack.ledger.cancel(job_id)
    until(
        lambda: stack.depth(stack.resources.map_queue_url) == (0, 0),
        timeout_s=30,
        what="the cancelled job's message to be deleted",
    )
    assert time.monotonic() - cancelled_at < JOB_STATE_TTL_S + 5
    assert any("work in hand stopped" in line for line in log_lines(log))
    job = stack.ledger.job(job_id)
    assert job is not None and (job.state, job.step, job.done) == (JobState.CANCELLED, 1, 0)
    assert mapper.poll() is None
