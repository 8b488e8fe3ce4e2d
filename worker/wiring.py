"""A worker's MapReduce handler, built from its environment (worker.names):
its queue, table and the other fleet it wakes.

Both processes of a worker build one (worker.isolation): the work process
runs messages with it; the worker itself asks it whether a job still takes
work and records the attempts it had to stop. Each builds its own clients:
botocore's connection pools belong to the process that made them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from worker import names
from worker import settings as cfg
from worker.clients import client
from worker.ecs import Service, Waker
from worker.ledger import Ledger, Phase
from worker.phases import MapReduce
from worker.queues import QueueConfig, queue_config

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def env(name: str) -> str:
    """A variable the worker cannot run without; exits naming it if unset."""
    value = os.environ.get(name)
    if not value:
        sys.exit(f"worker: environment variable {name} is not set")
    return value


def queue_url(phase: Phase) -> str:
    """The URL of the queue a worker of `phase` serves."""
    return env(names.ENV_MAP_QUEUE_URL if phase is Phase.MAP else names.ENV_REDUCE_QUEUE_URL)


def queue_settings(sqs: SQSClient, phase: Phase, url: str) -> QueueConfig:
    """The served queue's visibility timeout and redrive policy: as the
    stack or the local fleet that made the queue wrote them into the
    environment (the same values it made the queue with), else read from
    the queue itself, two requests more a worker."""
    dlq_url = os.environ.get(
        names.ENV_MAP_DLQ_URL if phase is Phase.MAP else names.ENV_REDUCE_DLQ_URL
    )
    visibility = os.environ.get(names.ENV_VISIBILITY_TIMEOUT_S)
    receives = os.environ.get(names.ENV_MAX_RECEIVE_COUNT)
    if dlq_url and visibility and receives:
        return QueueConfig(int(visibility), int(receives), dlq_url)
    return queue_config(sqs, url)


def max_task_s() -> float:
    """The most seconds one message may run (maxTaskSeconds)."""
    return float(os.environ.get(names.ENV_MAX_TASK_SECONDS, cfg.Settings().max_task_s))


# The fleet a worker of each phase wakes, with the variables that name its
# service and bound: a map worker that completes a step's map wakes the
# reducers, a reducer that starts a job's next step wakes the map workers.
WAKES = {
    Phase.MAP: (Phase.REDUCE, names.ENV_REDUCE_SERVICE, names.ENV_REDUCE_MAX_TASKS),
    Phase.REDUCE: (Phase.MAP, names.ENV_MAP_SERVICE, names.ENV_MAP_MAX_TASKS),
}


def waker(phase: Phase) -> Callable[[int], object] | None:
    """What a worker of `phase` calls with the number of messages it just
    queued for the other fleet: the one wake path (worker.ecs.Waker), or
    None where no service is named (the local fleet scales on its own)."""
    fleet, service_env, max_tasks_env = WAKES[phase]
    cluster, service = os.environ.get(names.ENV_CLUSTER), os.environ.get(service_env)
    if not (cluster and service):
        return None
    defaults = cfg.Settings()
    default_max = defaults.max_reducers if fleet is Phase.REDUCE else defaults.max_workers
    wake = Waker(
        client("ecs"),
        cluster=cluster,
        services={fleet.value: Service(service, int(os.environ.get(max_tasks_env, default_max)))},
    )

    def wake_fleet(need: int) -> None:
        wake(fleet.value, need)

    return wake_fleet


def build_handler(phase: Phase, worker_id: str) -> MapReduce:
    wake = waker(phase)
    return MapReduce(
        phase=phase,
        s3=client("s3"),
        ledger=Ledger(dynamodb=client("dynamodb"), table=env(names.ENV_TABLE)),
        worker_id=worker_id,
        sqs=client("sqs"),
        reduce_queue_url=env(names.ENV_REDUCE_QUEUE_URL),
        map_queue_url=os.environ.get(names.ENV_MAP_QUEUE_URL),
        wake_reducers=wake if phase is Phase.MAP else None,
        wake_mappers=wake if phase is Phase.REDUCE else None,
        local_files=os.environ.get(names.ENV_READ_LOCAL_FILES) == "1",
    )
