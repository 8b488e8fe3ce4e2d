"""`local up`, the commands that use it, and `local down`, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import reference_grep


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "submit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


@pytest.fixture
def running() -> object:
    up = cli("local", "up", "--max-workers", "2", "--idle-seconds", "2")
    assert up.returncode == 0, up.stderr
    try:
        yield up
    finally:
        cli("local", "down")


def test_a_session_with_the_long_running_embedded_aws(running: object, tmp_path: Path) -> None:
    again = cli("local", "up")
    assert again.returncode != 0
    assert "already running" in again.stderr

    log = tmp_path / "app.log"
    content = b"INFO start\nERROR disk full\r\nINFO ok\nERROR \xff again"
    log.write_bytes(content)
    run = cli("run", str(log), "--job", "grep", "--pattern", "^ERROR", "--wait", "--json")
    assert run.returncode == 0, run.stderr
    job_id = json.loads(run.stdout)["job_id"]

    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["state"] == "SUCCEEDED"
    assert (status["done"], status["expected"]) == (1, 1)
    # Locally, the cost is what the same job would cost on AWS, labelled so.
    cost = status["cost"]
    assert cost["task_seconds"] > 0 and cost["estimated_usd"] > cost["estimated_spot_usd"] > 0
    assert "would cost on AWS" in cost["basis"]
    text = cli("status", job_id).stdout
    assert "cost       on AWS ~$" in text
    assert "would cost on AWS" in text and "leaves out" in text

    result = cli("result", job_id)
    assert json.loads(result.stdout) == reference_grep({str(log): content}, "^ERROR")

    jobs = json.loads(cli("jobs", "--json").stdout)
    assert jobs[0]["job_id"] == job_id
    assert jobs[0]["cost_usd"] == status["cost"]["estimated_usd"]
    assert "est. cost on AWS" in cli("jobs").stdout

    local_status = json.loads(cli("local", "status", "--json").stdout)
    assert local_status["running"] is True
    assert set(local_status["queues"]) == {"map", "map-dlq", "reduce", "reduce-dlq"}
    assert local_status["jobs"][0]["job_id"] == job_id

    missing = cli("status", "no-such-job")
    assert missing.returncode == 1
    assert "no job 'no-such-job'" in missing.stderr

    down = cli("local", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    # Its jobs live in its memory: stopping it says they go with it.
    assert "the embedded AWS keeps its jobs (1), their results and dead letters" in down.stderr
    assert cli("local", "status").returncode == 1


def test_commands_against_a_fleet_know_the_jobs_it_was_started_with(tmp_path: Path) -> None:
    module = str(Path(__file__).resolve().parents[1] / "user" / "statsjobs.py")
    up = cli("local", "up", "--max-workers", "1", "--job-module", module)
    assert up.returncode == 0, up.stderr
    try:
        data = tmp_path / "n.txt"
        data.write_text("a 1\na 3\nb 5\nb 6\nb 10\n")
        # Neither `run` nor `result` is told the module: the fleet's is used.
        run = cli("run", str(data), "--job", "test-user-median", "--wait", "--json")
        assert run.returncode == 0, run.stderr
        job_id = json.loads(run.stdout)["job_id"]
        result = cli("result", job_id)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"a": 2, "b": 6}
    finally:
        cli("local", "down")
