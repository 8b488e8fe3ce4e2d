"""The CLI's errors as a user meets them: one line, the right exit code, no
traceback, and numbers that tell the truth."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from submit.cli import EXIT_USAGE, main
from submit.cli import follow as follow_cli
from submit.embedded import EmbeddedAWS, local_client, local_resources, port_in_use, provision
from submit.resources import LocalState, state_path
from worker import settings as cfg


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_bad_cdk_json_value_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "cdk.json"
    bad.write_text(json.dumps({"context": {"maxWorkers": "many"}}))
    monkeypatch.setattr(cfg, "CDK_JSON", bad)
    good = tmp_path / "in.txt"
    good.write_text("hello\n")
    code, _, err = run(capsys, "run", "--local", "--job", "wordcount", str(good))
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        "python -m submit: error: context 'maxWorkers' must be a whole number, got 'many'"
    ]


def test_local_up_on_a_port_in_use_is_refused_before_it_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "local", "up", "--port", str(port))
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        f"python -m submit: error: --port {port}: 127.0.0.1:{port} is not free "
        "(Address already in use); choose another, or leave --port out for a free one"
    ]
    code, _, err = run(capsys, "local", "up", "--port", "70000")
    assert code == EXIT_USAGE and "a port is from 1 to 65535" in err


def test_two_different_patterns_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR one\n")
    code, _, err = run(
        capsys,
        "run",
        "--local",
        "--job",
        "grep",
        str(log),
        "--param",
        "pattern=one",
        "--pattern",
        "ERROR",
    )
    assert code == EXIT_USAGE
    assert "--pattern 'ERROR' and --param pattern='one' disagree" in err


@pytest.mark.parametrize(
    "command", [["run", "--local", "--job", "wordcount", "in.txt"], ["result", "JOB"]]
)
def test_top_zero_is_refused(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--top 0` printed the whole result, the opposite of what it asks for."""
    with pytest.raises(SystemExit) as exited:
        main([*command, "--top", "0"])
    assert exited.value.code == EXIT_USAGE
    assert "--top: must be 1 or more, got 0" in capsys.readouterr().err


def test_help_of_an_unknown_or_broken_job_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --job NAME --help` for a job that is not there, or whose module
    does not load, showed a traceback."""
    broken = tmp_path / "broken.py"
    broken.write_text("class X(\n")
    for argv, says in (
        (["run", "--job", "nosuch", "--help"], "--job nosuch: unknown job 'nosuch' (known: "),
        (
            ["run", "--job-module", str(broken), "--job", "x", "--help"],
            f"--job x: job module '{broken}' could not be loaded: SyntaxError",
        ),
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert "usage: " in out and says in out


def test_local_up_on_port_80_serves(capsys: pytest.CaptureFixture[str]) -> None:
    """Port 80 is a port like the others: the queues' URLs, which name no
    port there, failed the start-up check with an internal dump."""
    settings = cfg.load()
    expected = local_resources("http://127.0.0.1:80", settings)
    assert expected.map_queue_url == "http://127.0.0.1/123456789012/drover-map"
    if port_in_use(80):
        pytest.skip("port 80 is taken on this machine")
    aws = EmbeddedAWS(port=80)
    try:
        endpoint = aws.start()
    except PermissionError:
        pytest.skip("binding port 80 needs privileges here")
    try:
        made = provision(
            s3=local_client("s3", endpoint),
            sqs=local_client("sqs", endpoint),
            dynamodb=local_client("dynamodb", endpoint),
            settings=settings,
            endpoint_url=endpoint,
        )
        assert made == local_resources(endpoint, settings)
    finally:
        aws.stop()


def test_a_missing_input_is_exit_2_with_no_stack_to_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that is not there was reported as the stack that could not be
    reached (exit 1), where README promises exit 2 for a missing path."""
    monkeypatch.setenv("DROVER_HOME", str(tmp_path / "home"))  # no local up running
    missing = tmp_path / "nope.txt"
    code, _, err = run(capsys, "run", str(missing), "--job", "wordcount")
    assert code == EXIT_USAGE
    assert err.strip() == f"python -m submit: error: {missing}: no such file or directory"


def test_ctrl_c_while_waiting_says_the_job_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C in `wait` (or `run --wait` on `local up` or a stack) said only
    "interrupted", as if the job had stopped with the command."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(follow_cli, "resolve", lambda stack: None)
    monkeypatch.setattr(follow_cli, "follow", interrupted)
    code, _, err = run(capsys, "wait", "J1")
    assert code == 130
    assert err.splitlines() == [
        "stopped following job J1, which keeps running: `status J1`, `wait J1`, "
        "or `cancel J1` to stop it",
        "interrupted",
    ]


@pytest.mark.parametrize("option", [["--compare"], ["--max-workers", "1"]])
def test_local_options_without_local_are_refused(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a running fleet they were silently ignored."""
    (tmp_path / "in.txt").write_text("a b\n")
    code, _, err = run(capsys, "run", str(tmp_path / "in.txt"), "--job", "wordcount", *option)
    assert code == EXIT_USAGE
    assert f"{option[0]}: with --local only" in err


def test_jobs_kinds_lists_the_running_fleet_s_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --job NAME` knows a `local up --job-module` fleet's jobs; `jobs
    --kinds` listed the built-ins only."""
    module = tmp_path / "fleetkinds.py"
    module.write_text(
        "from worker.jobs import register\n"
        "from worker.jobs.wordcount import WordCount\n"
        "@register\n"
        "class Mine(WordCount):\n"
        "    name = 'test-fleet-kind'\n"
        "    description = 'a job the fleet loads'\n"
    )
    monkeypatch.setattr(follow_cli, "fleet_job_modules", lambda stack: (str(module),))
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = run(capsys, "jobs", "--kinds")
    assert code == 0
    assert "test-fleet-kind: a job the fleet loads" in out


def test_local_down_of_an_embedded_aws_that_does_not_answer_does_not_wait_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`local down` asks the embedded AWS about its jobs before it stops it;
    one that takes connections and never answers (hung) is stopped all the
    same, after one short try, not after botocore's retries of a minute each."""
    monkeypatch.setenv("DROVER_HOME", str(tmp_path / "home"))
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}"
        daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        # Reaped as it ends, as a daemon that is not this process's child is.
        threading.Thread(target=daemon.wait, daemon=True).start()
        try:
            LocalState(
                pid=daemon.pid,
                port=hung.getsockname()[1],
                endpoint_url=endpoint,
                max_workers=2,
                resources=local_resources(endpoint, cfg.load()),
            ).write(state_path())
            started = time.monotonic()
            code, out, _ = run(capsys, "local", "down")
            assert time.monotonic() - started < 20
        finally:
            daemon.kill()
            daemon.wait()
    assert code == 0 and f"stopped the embedded AWS (pid {daemon.pid})" in out
