"""A worker's MapReduce handler, built from its environment (worker.names):
its queue, table and, for map, the reduce fleet it wakes.

Both processes of a worker build one (worker.isolation): the work process
runs messages with it; the worker itself asks it whether a job still takes
work and records the attempts it had to stop. Each builds its own clients:
botocore's connection pools belong to the process that made them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from worker import names
from worker import settings as cfg
from worker.clients import client
from worker.ecs import Service, Waker
from worker.ledger import Ledger, Phase
from worker.phases import MapReduce


def env(name: str) -> str:
    """A variable the worker cannot run without; exits naming it if unset."""
    value = os.environ.get(name)
    if not value:
        sys.exit(f"worker: environment variable {name} is not set")
    return value


def queue_url(phase: Phase) -> str:
    """The URL of the queue a worker of `phase` serves."""
    return env(names.ENV_MAP_QUEUE_URL if phase is Phase.MAP else names.ENV_REDUCE_QUEUE_URL)


def max_task_s() -> float:
    """The most seconds one message may run (maxTaskSeconds)."""
    return float(os.environ.get(names.ENV_MAX_TASK_SECONDS, cfg.Settings().max_task_s))


def build_handler(phase: Phase, worker_id: str) -> MapReduce:
    sqs = client("sqs")
    wake: Callable[[int], object] | None = None
    cluster, reduce_service = (
        os.environ.get(names.ENV_CLUSTER),
        os.environ.get(names.ENV_REDUCE_SERVICE),
    )
    if phase is Phase.MAP and cluster and reduce_service:
        reducers = Service(
            reduce_service,
            int(os.environ.get(names.ENV_REDUCE_MAX_TASKS, cfg.Settings().max_reducers)),
        )
        waker = Waker(client("ecs"), cluster=cluster, services={Phase.REDUCE.value: reducers})

        def wake(partitions: int) -> None:
            waker(Phase.REDUCE, partitions)

    return MapReduce(
        phase=phase,
        s3=client("s3"),
        ledger=Ledger(dynamodb=client("dynamodb"), table=env(names.ENV_TABLE)),
        worker_id=worker_id,
        sqs=sqs,
        reduce_queue_url=env(names.ENV_REDUCE_QUEUE_URL),
        map_queue_url=os.environ.get(names.ENV_MAP_QUEUE_URL),
        wake_reducers=wake,
    )
