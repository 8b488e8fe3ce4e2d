"""A chunk longer than the visibility timeout, and workers told to stop."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.reliability.conftest import Stack, log_lines, until, write_corpus
from worker.consumer import EXIT_FORCED, EXIT_OK
from worker.keepalive import EXIT_RETURNED
from worker.ledger import ItemState, Phase

SLOW = "test-slow-wordcount"


def one_chunk_job(stack: Stack, tmp_path: Path, params: dict) -> str:
    files = write_corpus(tmp_path / "in", files=1, lines=20, seed=1)
    return stack.submit(list(files), SLOW, params, chunk_size_bytes=1 << 20, partitions=1)


def started(log: Path) -> bool:
    return any("chunk 0 receive=" in line and ": start" in line for line in log_lines(log))


def test_a_chunk_longer_than_the_visibility_timeout_runs_once(make_stack, tmp_path: Path) -> None:
    stack = make_stack(visibility_timeout_s=5)
    # Two workers poll the queue all along: without the heartbeat the second
    # would receive the chunk after 5 s and process it in parallel.
    (_, log_a), (_, log_b) = stack.worker("map"), stack.worker("map")
    job_id = one_chunk_job(stack, tmp_path, {"seconds": 13})
    stack.worker("reduce")
    status = stack.wait(job_id, timeout_s=120)
    assert status.state == "SUCCEEDED"

    starts = [line for line in log_lines(log_a, log_b) if ": start" in line]
    assert len(starts) == 1, starts
    assert "receive=1" in starts[0]
    (chunk,) = stack.ledger.items(job_id, Phase.MAP)
    assert (chunk.state, chunk.attempts) == (ItemState.DONE, 1)


def test_sigterm_hands_back_a_chunk_that_cannot_finish_in_time(make_stack, tmp_path: Path) -> None:
    stack = make_stack(visibility_timeout_s=6)
    hold = tmp_path / "hold"
    hold.touch()
    stop_timeout_s = 12
    worker, log = stack.worker("map", stop_timeout_s=stop_timeout_s)
    job_id = one_chunk_job(stack, tmp_path, {"seconds": 0, "hold": str(hold)})
    until(lambda: started(log), timeout_s=60, what="the worker to start the chunk")

    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=stop_timeout_s + 30) == EXIT_RETURNED
    stopped_after_s = time.monotonic() - signalled
    # Given back, not left to its visibility timeout (the heartbeat renewed
    # it for 6 s less than 2 s before): at once visible to the next worker.
    assert stack.depth(stack.resources.map_queue_url) == (1, 0)
    assert stopped_after_s < stop_timeout_s
    assert any("giving message" in line for line in log_lines(log))

    hold.unlink()
    stack.worker("map")
    stack.worker("reduce")
    assert stack.wait(job_id).state == "SUCCEEDED"
    (chunk,) = stack.ledger.items(job_id, Phase.MAP)
    assert chunk.attempts == 2


def test_sigterm_lets_a_short_chunk_finish_then_exits(make_stack, tmp_path: Path) -> None:
    stack = make_stack(visibility_timeout_s=6)
    worker, log = stack.worker("map", stop_timeout_s=20)
    job_id = one_chunk_job(stack, tmp_path, {"seconds": 3})
    until(lambda: started(log), timeout_s=60, what="the worker to start the chunk")

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == EXIT_OK
    lines = log_lines(log)
    assert any("chunk 0 receive=1: last" in line for line in lines)
    assert "done=1" in lines[-1]  # the summary line
    # Finished and deleted before exiting: nothing waits for a redelivery.
    assert stack.depth(stack.resources.map_queue_url) == (0, 0)
    job = stack.ledger.job(job_id)
    assert job is not None and job.done == 1


def test_a_second_signal_exits_at_once(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    hold = tmp_path / "hold"
    hold.touch()
    worker, log = stack.worker("map", stop_timeout_s=60)
    one_chunk_job(stack, tmp_path, {"seconds": 0, "hold": str(hold)})
    until(lambda: started(log), timeout_s=60, what="the worker to start the chunk")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == EXIT_FORCED


def test_an_idle_worker_stops_at_once_whatever_its_long_poll(make_stack, tmp_path: Path) -> None:
    """SIGTERM (scale-in, `local down`, the end of `run --local`) ends a wait
    in a receive at once, not when the stack's 20 s long poll runs out."""
    stack = make_stack()
    worker, log = stack.worker(
        "map", env={"DROVER_RECEIVE_WAIT_S": str(stack.settings.receive_wait_s)}
    )
    until(
        lambda: any("serving map queue" in line for line in log_lines(log)),
        timeout_s=60,
        what="the worker to serve",
    )
    time.sleep(1)  # well into its first long poll
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == EXIT_OK
    assert time.monotonic() - signalled < 3
    assert stack.settings.receive_wait_s >= 10
    assert "stopping" in log_lines(log)[-1]

    # A job queued after it stopped is whole: the interrupted receive took nothing.
    job_id = one_chunk_job(stack, tmp_path, {"seconds": 0})
    stack.worker("map")
    stack.worker("reduce")
    assert stack.wait(job_id).state == "SUCCEEDED"
