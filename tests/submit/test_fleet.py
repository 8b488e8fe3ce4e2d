"""The local fleet scales by the stack's rules: the backlog's level up to
the maximum, never more workers than messages, zero once idle."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from submit import fleet as fleet_module
from submit.clients import Clients
from submit.fleet import MAX_START_FAILURES, START_GRACE_S, STARTED_AFTER_S, Fleet, Pool
from submit.resources import Resources
from worker.consumer import EXIT_UNAVAILABLE
from worker.ledger import Phase
from worker.settings import load, scaling_level


class SleepingFleet(Fleet):
    """A fleet whose workers are idle processes: scaling without the work."""

    def _spawn(self, pool: Pool) -> subprocess.Popen[bytes]:
        pool.started += 1
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.fixture
def fleet(clients: Clients, resources: Resources, tmp_path: Path) -> Iterator[Fleet]:
    f = SleepingFleet(
        sqs=clients.sqs,
        map_queue_url=resources.map_queue_url,
        reduce_queue_url=resources.reduce_queue_url,
        env={},
        max_workers=4,
        max_reducers=1,
        idle_s=0,
        log_dir=tmp_path,
    )
    yield f
    f.shutdown(5)


def send(clients: Clients, url: str, n: int) -> None:
    for start in range(0, n, 10):
        entries = [{"Id": str(i), "MessageBody": "m"} for i in range(min(10, n - start))]
        clients.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def test_local_mode_sets_the_levels_the_stack_sets() -> None:
    settings = load()
    for backlog in (1, 3, settings.max_workers, 10 * settings.max_workers):
        assert scaling_level(backlog, settings.max_workers) == min(backlog, settings.max_workers)


def test_one_message_wakes_one_worker_and_no_more(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    """The old +1 steps grew a 1-chunk job to the maximum; an exact level
    starts one worker for one message, however often the rule runs."""
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 0
    send(clients, resources.map_queue_url, 1)
    for _ in range(6):
        fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 1
    assert fleet.workers(Phase.REDUCE) == []


def test_a_deep_backlog_gets_the_maximum_at_once(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    send(clients, resources.map_queue_url, 3)
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 3
    send(clients, resources.map_queue_url, 117)
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 4


def test_a_draining_backlog_keeps_its_workers(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    """Scale-in is the idle rule's alone: a pool with more workers than
    messages left is not shrunk under the ones still in hand."""
    send(clients, resources.map_queue_url, 4)
    fleet.step()
    received = clients.sqs.receive_message(QueueUrl=resources.map_queue_url, MaxNumberOfMessages=3)[
        "Messages"
    ]
    for message in received[1:]:
        clients.sqs.delete_message(
            QueueUrl=resources.map_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 4


def test_in_flight_work_keeps_workers_and_an_empty_backlog_releases_them(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    send(clients, resources.map_queue_url, 1)
    fleet.step()
    held = clients.sqs.receive_message(QueueUrl=resources.map_queue_url)["Messages"][0]
    for _ in range(3):
        fleet.step()  # nothing visible, one in flight: no change
    assert len(fleet.workers(Phase.MAP)) == 1
    clients.sqs.delete_message(
        QueueUrl=resources.map_queue_url, ReceiptHandle=held["ReceiptHandle"]
    )
    fleet.step()  # idle from now; the idle window is zero here
    fleet.step()
    assert fleet.workers(Phase.MAP) == []


def test_reducers_woken_early_wait_out_the_map_phase(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    """`run --local` wakes the reducers with the job: they must still be
    there when the map phase ends, not retired by the idle rule meanwhile
    and started again on the job's last stretch."""
    fleet.wake(Phase.REDUCE, 1)
    send(clients, resources.map_queue_url, 2)
    held = clients.sqs.receive_message(QueueUrl=resources.map_queue_url)["Messages"][0]
    for _ in range(3):
        fleet.step()  # the reduce queue is empty, the map queue is not
    (reducer,) = fleet.workers(Phase.REDUCE)
    rest = clients.sqs.receive_message(QueueUrl=resources.map_queue_url, VisibilityTimeout=60)
    for message in (held, *rest["Messages"]):
        clients.sqs.delete_message(
            QueueUrl=resources.map_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    fleet.step()
    fleet.step()  # both queues empty: idle, and the idle window is zero here
    assert fleet.workers(Phase.REDUCE) == []
    assert reducer.poll() is not None or reducer in fleet.pools[Phase.REDUCE].retiring


def test_a_dead_worker_is_replaced(fleet: Fleet, clients: Clients, resources: Resources) -> None:
    send(clients, resources.map_queue_url, 1)
    fleet.step()
    (worker,) = fleet.workers(Phase.MAP)
    worker.kill()
    worker.wait()
    fleet.step()
    (replacement,) = fleet.workers(Phase.MAP)[:1]
    assert replacement.pid != worker.pid and replacement.poll() is None


def test_wake_starts_workers_before_the_queue_shows_depth(fleet: Fleet) -> None:
    fleet.wake(Phase.MAP, 3)
    assert len(fleet.workers(Phase.MAP)) == 3
    fleet.wake("map", 10)
    assert len(fleet.workers(Phase.MAP)) == 4
    fleet.wake(Phase.REDUCE, 2)
    assert len(fleet.workers(Phase.REDUCE)) == 1


def test_wake_never_lowers_a_pool(fleet: Fleet) -> None:
    fleet.wake(Phase.MAP, 3)
    fleet.wake(Phase.MAP, 1)
    assert len(fleet.workers(Phase.MAP)) == 3


class ExitingFleet(Fleet):
    """A fleet whose workers exit at once with `code`, as if after running
    `ran_s`."""

    code = EXIT_UNAVAILABLE
    ran_s = START_GRACE_S + 20

    def _spawn(self, pool: Pool) -> subprocess.Popen[bytes]:
        pool.started += 1
        proc = subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({self.code})"])
        proc.wait()
        pool.started_at[proc.pid] = time.monotonic() - self.ran_s
        return proc


@pytest.mark.parametrize(
    ("code", "gives_up"),
    [
        # Its work process could not start: a start-up failure, however long
        # the worker waited for it.
        (EXIT_UNAVAILABLE, True),
        # Any other error past the grace is a worker that got going.
        (1, False),
    ],
)
def test_a_worker_whose_work_process_cannot_start_counts_as_dying_at_start_up(
    clients: Clients,
    resources: Resources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    gives_up: bool,
) -> None:
    assert START_GRACE_S < ExitingFleet.ran_s < STARTED_AFTER_S
    monkeypatch.setattr(fleet_module, "START_BACKOFF_S", 0.0)
    f = ExitingFleet(
        sqs=clients.sqs,
        map_queue_url=resources.map_queue_url,
        reduce_queue_url=resources.reduce_queue_url,
        env={},
        max_workers=1,
        max_reducers=1,
        idle_s=60,
        log_dir=tmp_path,
    )
    f.code = code
    try:
        send(clients, resources.map_queue_url, 1)
        for _ in range(2 * MAX_START_FAILURES):
            f.step()
        pool = f.pools[Phase.MAP]
        if gives_up:
            assert pool.started == MAX_START_FAILURES
            assert f.problem() is not None
            assert f"exit code {EXIT_UNAVAILABLE}, its work process could not start" in (
                f.problem() or ""
            )
        else:
            assert pool.started > MAX_START_FAILURES
            assert f.problem() is None
    finally:
        f.shutdown(5)
