"""Workers that vanish while holding the same chunk: SQS moves it to the DLQ
by itself after maxReceiveCount receives, with no worker left to record it.
The commands that look at the job find it and fail the job, naming it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from submit.cli import main
from submit.tracking import fetch_result, job_status
from tests.conftest import reference_wordcount
from tests.reliability.conftest import log_lines, until, write_corpus
from worker.ledger import JobState


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_a_chunk_whose_workers_keep_dying_fails_the_job_visibly(
    make_stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = make_stack(visibility_timeout_s=4, max_receive_count=2)
    stack.serve_cli()
    hold = tmp_path / "hold"
    hold.touch()
    files = write_corpus(tmp_path / "in", files=1, lines=30, seed=9)
    job_id = stack.submit(
        list(files),
        "test-slow-wordcount",
        {"seconds": 0, "hold": str(hold)},
        chunk_size_bytes=1 << 20,
        partitions=1,
    )

    # Two workers in turn take the chunk and are killed holding it, as an
    # out-of-memory kill would do: nothing gets written.
    holders = []
    for receive in (1, 2):
        worker, log = stack.worker("map", name=f"doomed-{receive}")
        until(
            lambda log=log, receive=receive: any(
                f"receive={receive}: start" in line for line in log_lines(log)
            ),
            timeout_s=60,
            what=f"receive {receive} of the chunk",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        holders.append(f"doomed-{receive}")
    # The next receive, after the visibility timeout, is SQS's own move.
    stack.worker("map", name="survivor")
    until(
        lambda: stack.depth(stack.resources.map_dlq_url)[0] == 1,
        timeout_s=60,
        what="SQS to move the chunk to the DLQ",
    )
    # Nobody said anything: as far as the table knows, the job is under way.
    assert job_status(stack.clients, stack.resources, job_id).state in (
        JobState.PENDING,
        JobState.RUNNING,
    )

    # `wait` looks at the DLQs every few seconds and finds it.
    code, waited = run(capsys, "wait", job_id, "--timeout", "90", "--json")
    assert (code, waited["state"]) == (1, "FAILED")
    code, status = run(capsys, "status", job_id, "--json")
    assert code == 0
    (failed,) = status["failed_chunks"]
    assert failed["chunk"] == 0
    assert failed["attempts"] == 2
    assert failed["last_error"].startswith("WorkerLost: no result after 2 receive(s)")
    # Named on its last receive, before it vanished.
    assert failed["worker"] == holders[-1]

    code, letters = run(capsys, "dlq", "list", "--json")
    (letter,) = letters
    assert (letter["job_id"], letter["chunk"], letter["receives"]) == (job_id, 0, 2)
    assert letter["error"].startswith("WorkerLost")
    # Recorded once: looking again finds the same stamped message.
    (again,) = run(capsys, "dlq", "list", "--json")[1]
    assert {**again, "age_s": 0} == {**letter, "age_s": 0}

    hold.unlink()
    code, resumed = run(capsys, "retry", job_id, "--json")
    assert (code, resumed["resent"], resumed["dead_letters_removed"]) == (0, [0], 1)
    stack.worker("reduce")
    code, waited = run(capsys, "wait", job_id, "--timeout", "120", "--json")
    assert (code, waited["state"]) == (0, "SUCCEEDED")
    assert fetch_result(stack.clients, stack.resources, job_id) == reference_wordcount(files)
    assert run(capsys, "dlq", "list", "--json")[1] == []
