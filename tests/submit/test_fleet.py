"""The local fleet scales on queue depth by the stack's steps."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from submit.clients import Clients
from submit.fleet import Fleet, Pool
from submit.resources import Resources
from worker.ledger import Phase
from worker.settings import DEFAULT_SCALE_OUT_STEPS, load


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
        steps=DEFAULT_SCALE_OUT_STEPS,
        idle_s=0,
        log_dir=tmp_path,
    )
    yield f
    f.shutdown(5)


def send(clients: Clients, url: str, n: int) -> None:
    for start in range(0, n, 10):
        entries = [{"Id": str(i), "MessageBody": "m"} for i in range(min(10, n - start))]
        clients.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def test_local_mode_uses_the_stack_steps() -> None:
    steps = load().scale_out_steps
    assert steps[0].lower == 1 and steps[0].change >= 1


def test_one_message_wakes_a_fleet_at_zero_and_it_grows_to_its_maximum(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 0
    send(clients, resources.map_queue_url, 1)
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 1
    for _ in range(6):
        fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 4
    assert fleet.workers(Phase.REDUCE) == []


def test_deep_backlogs_add_workers_faster(
    fleet: Fleet, clients: Clients, resources: Resources
) -> None:
    send(clients, resources.map_queue_url, 120)
    fleet.step()
    assert len(fleet.workers(Phase.MAP)) == 2


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
    fleet.wake(Phase.MAP, 10)
    assert len(fleet.workers(Phase.MAP)) == 4
