"""A user's own jobs on real worker processes: a module from outside the
project, a job of two steps that loses a worker mid-step, a module that
fails to import (its jobs fail, the worker serves on), and a fleet whose
workers cannot start, which must stop trying and say why."""

from __future__ import annotations

import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from submit.cli.follow import follow
from submit.cli.options import load_job_modules
from submit.errors import OperationalError
from submit.fleet import MAX_START_FAILURES
from submit.local import LocalDrover, LocalOptions
from submit.submission import submit_job
from submit.target import local_target
from submit.tracking import fetch_result, wait_for
from tests.conftest import reference_top_words, reference_wordcount
from tests.reliability.conftest import Stack, until, write_corpus
from tests.reliability.test_bad_messages import create_job, map_message
from tests.worker.test_jobs import USER_JOBS, numbers_corpus, stats_reference
from worker.consumer import EXIT_UNAVAILABLE
from worker.jobs import registry
from worker.ledger import ItemKey, ItemState, Phase
from worker.settings import Settings

# Job modules that cannot be imported: one raises, one ends the script that
# imports it (SystemExit), one takes the interpreter down with it.
RAISES = "raise RuntimeError('no licence server')\n"
EXITS = "import sys\nsys.exit('teamjobs: run me as a script')\n"
KILLS = "import os\nos._exit(3)\n"


def test_a_user_module_from_outside_the_project_runs_on_the_local_fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere" / "statsjobs.py"
    elsewhere.parent.mkdir()
    shutil.copy(USER_JOBS, elsewhere)
    # As in a submitting process of its own: this copy is the only one
    # loaded (another test may have loaded the project's, whose jobs then
    # hold the same names).
    monkeypatch.setitem(sys.modules, "statsjobs", None)  # put back as it was after
    del sys.modules["statsjobs"]
    for name in re.findall(r'name = "([^"]+)"', USER_JOBS.read_text()):
        monkeypatch.setitem(registry._REGISTRY, name, None)  # type: ignore[arg-type]
        del registry._REGISTRY[name]
    # What `run --job-module PATH` does in submit; the workers load it by
    # its path too, with the project's and the caller's PYTHONPATH.
    load_job_modules([str(elsewhere)])
    files = numbers_corpus(11)
    paths = []
    for name, content in files.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        paths.append(str(path))
    options = LocalOptions(
        max_workers=2,
        log_dir=tmp_path / "logs",
        job_modules=(str(elsewhere),),
        settings=Settings(visibility_timeout_s=10, max_receive_count=3),
    )
    with LocalDrover(options) as drover:
        assert drover.resources is not None
        clients, resources = drover.clients(), drover.resources
        jobs = {
            job: submit_job(
                clients,
                resources,
                inputs=sorted(paths),
                job=job,
                params=params,
                chunk_size_bytes=300,
                partitions=2,
            ).job_id
            for job, params in (
                ("test-user-mean", {}),
                ("test-user-median", {}),
                ("test-user-distinct", {"min": "100"}),
            )
        }
        for job, job_id in jobs.items():
            status = wait_for(clients, resources, job_id, timeout_s=120, max_poll_s=0.3)
            assert status.succeeded, (job, status.error)
            # The result is keyed by input path; the reference by file name.
            by_name = {Path(p).name: Path(p).read_bytes() for p in paths}
            assert fetch_result(clients, resources, job_id) == stats_reference(
                job, by_name, low=100
            )


def test_a_two_step_job_survives_a_worker_killed_in_its_second_step(
    make_stack: type[Stack], tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_s=4, max_receive_count=4)
    files = write_corpus(tmp_path / "in", files=3, lines=200, seed=5)
    doomed, _ = stack.worker("map")
    stack.worker("reduce")
    job_id = stack.submit(
        list(files),
        "test-slow-top-words",
        {"n": "5", "seconds": "1.5"},
        chunk_size_bytes=1500,
        partitions=3,
    )
    until(
        lambda: (
            (job := stack.ledger.job(job_id)) is not None
            and job.step == 1
            and stack.depth(stack.resources.map_queue_url)[1] > 0
        ),
        timeout_s=90,
        what="a chunk of the second step in a worker's hands",
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    stack.worker("map")
    status = stack.wait(job_id, timeout_s=120)
    assert status.succeeded, status.error
    assert (status.step, status.steps) == (1, 2)
    expected = reference_top_words(files, 5)
    assert fetch_result(stack.clients, stack.resources, job_id) == expected


def test_workers_that_die_at_start_up_are_not_restarted_without_end(tmp_path: Path) -> None:
    options = LocalOptions(
        max_workers=2,
        log_dir=tmp_path / "logs",
        # Every worker exits at once: it finds no jobs table to serve.
        extra_env={"DROVER_TABLE": ""},
    )
    source = tmp_path / "in.txt"
    source.write_text("a few words\n")
    # The logs of an earlier run that used the same worker ids.
    (tmp_path / "logs").mkdir()
    for n in range(1, MAX_START_FAILURES + 1):
        (tmp_path / "logs" / f"local-map-{n}.log").write_text("an earlier run's line\n")
    with LocalDrover(options) as drover:
        assert drover.resources is not None and drover.fleet is not None
        fleet = drover.fleet
        target = local_target(
            drover.aws.endpoint_url, drover.resources, wake=fleet.wake, fleet_problem=fleet.problem
        )
        job_id = submit_job(
            target.clients,
            target.resources,
            inputs=[str(source)],
            job="wordcount",
            params={},
            chunk_size_bytes=1 << 20,
            partitions=1,
            wake=target.wake,
        ).job_id
        started = time.monotonic()
        with pytest.raises(OperationalError) as stopped:
            follow(target, job_id, quiet=True, timeout_s=90)
        assert time.monotonic() - started < 60
        message = str(stopped.value)
        assert f"job {job_id} is PENDING and cannot go on" in message
        assert f"die at start-up ({MAX_START_FAILURES} in a row" in message
        assert "DROVER_TABLE is not set" in message, "the worker's own words are quoted"
        assert "an earlier run's line" not in message, "and only this run's"
        time.sleep(2)
        assert fleet.pools[Phase.MAP].started == MAX_START_FAILURES, "no start after giving up"


@pytest.mark.parametrize("source", [RAISES, EXITS])
def test_a_module_that_fails_to_import_fails_its_jobs_and_the_worker_serves_on(
    make_stack: type[Stack], tmp_path: Path, source: str
) -> None:
    module = tmp_path / "teamjobs.py"
    module.write_text(source)
    stack = make_stack(max_receive_count=3)
    env = {"DROVER_JOB_MODULES": f"tests.reliability.jobs,{module}"}
    mapper, log = stack.worker("map", env=env)
    stack.worker("reduce", env=env)
    # A job of that module: only the worker can tell it is not there.
    stack.clients.s3.put_object(Bucket=stack.resources.bucket, Key="tiny.txt", Body=b"x " * 50)
    create_job(stack, "j-team")
    stack.clients.sqs.send_message(
        QueueUrl=stack.resources.map_queue_url,
        MessageBody=map_message(stack, "j-team", job="team-job"),
    )
    until(
        lambda: stack.ledger.require("j-team").state.terminal,
        timeout_s=60,
        what="the job of the broken module to fail",
    )
    item = stack.ledger.item("j-team", ItemKey.chunk(0))
    assert item is not None and (item.state, item.attempts) == (ItemState.FAILED, 1)
    assert item.last_error is not None
    assert item.last_error.startswith("JobError: unknown job 'team-job'")
    assert f"job module '{module}' could not be loaded" in item.last_error
    # Every other job still runs on the same worker.
    files = write_corpus(tmp_path / "in", files=2, lines=30, seed=8)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=600)
    assert stack.wait(job_id).succeeded
    assert fetch_result(stack.clients, stack.resources, job_id) == reference_wordcount(files)
    assert mapper.poll() is None, log.read_text()


def test_a_fleet_whose_work_processes_cannot_start_gives_up_and_says_why(tmp_path: Path) -> None:
    """A module that kills the interpreter importing it: the work process
    never gets ready, each worker exits with EXIT_UNAVAILABLE, and the
    local fleet counts those as workers that died at start-up."""
    module = tmp_path / "fatal.py"
    module.write_text(KILLS)
    options = LocalOptions(max_workers=1, log_dir=tmp_path / "logs", job_modules=(str(module),))
    source = tmp_path / "in.txt"
    source.write_text("a few words\n")
    with LocalDrover(options) as drover:
        assert drover.resources is not None and drover.fleet is not None
        fleet = drover.fleet
        target = local_target(
            drover.aws.endpoint_url, drover.resources, wake=fleet.wake, fleet_problem=fleet.problem
        )
        job_id = submit_job(
            target.clients,
            target.resources,
            inputs=[str(source)],
            job="wordcount",
            params={},
            chunk_size_bytes=1 << 20,
            partitions=1,
            wake=target.wake,
        ).job_id
        with pytest.raises(OperationalError) as stopped:
            follow(target, job_id, quiet=True, timeout_s=120)
        message = str(stopped.value)
        assert f"job {job_id} is PENDING and cannot go on" in message
        assert (
            f"({MAX_START_FAILURES} in a row, the last with exit code {EXIT_UNAVAILABLE}, "
            "its work process could not start)"
        ) in message
        assert "the work process exited with code 3" in message, "the worker's own words"
        assert fleet.pools[Phase.MAP].started == MAX_START_FAILURES
