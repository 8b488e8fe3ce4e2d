"""A worker's queue settings: from the environment its stack or local fleet
wrote, without a request, else from the queue itself."""

from __future__ import annotations

import pytest

from submit.clients import Clients
from submit.local import LocalDrover, LocalOptions
from submit.resources import Resources
from tests.conftest import counting
from worker import names
from worker.ledger import Phase
from worker.queues import QueueConfig, queue_config
from worker.wiring import queue_settings


@pytest.mark.parametrize("phase", list(Phase))
def test_settings_the_environment_gives_cost_no_request(
    clients: Clients, resources: Resources, phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in resources.worker_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(names.ENV_VISIBILITY_TIMEOUT_S, "30")
    monkeypatch.setenv(names.ENV_MAX_RECEIVE_COUNT, "3")
    url = resources.map_queue_url if phase is Phase.MAP else resources.reduce_queue_url
    with counting(clients) as calls:
        got = queue_settings(clients.sqs, phase, url)
    assert calls == []
    # What the queue itself says (the fixture makes it with 30 s and 3).
    assert got == queue_config(clients.sqs, url)


def test_without_them_the_queue_is_asked(
    clients: Clients, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in resources.worker_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(names.ENV_VISIBILITY_TIMEOUT_S, raising=False)
    with counting(clients) as calls:
        got = queue_settings(clients.sqs, Phase.MAP, resources.map_queue_url)
    assert got == QueueConfig(30, 3, resources.map_dlq_url)
    assert calls == ["sqs.GetQueueAttributes", "sqs.GetQueueUrl"]


def test_the_local_fleet_tells_its_workers_what_it_made_the_queues_with() -> None:
    with LocalDrover(LocalOptions(max_workers=1, max_reducers=1)) as drover:
        assert drover.fleet is not None and drover.resources is not None
        env, sqs = drover.fleet.env, drover.clients().sqs
        for phase, url, dlq in (
            (Phase.MAP, drover.resources.map_queue_url, names.ENV_MAP_DLQ_URL),
            (Phase.REDUCE, drover.resources.reduce_queue_url, names.ENV_REDUCE_DLQ_URL),
        ):
            told = QueueConfig(
                int(env[names.ENV_VISIBILITY_TIMEOUT_S]),
                int(env[names.ENV_MAX_RECEIVE_COUNT]),
                env[dlq],
            )
            assert told == queue_config(sqs, url), phase
