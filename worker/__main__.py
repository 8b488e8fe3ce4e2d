"""The container program: `python -m worker map` or `python -m worker reduce`.

Reads its queue, table and (for map) the reduce fleet to wake from the
environment (worker.names), builds the clients, the ledger, the MapReduce
handler and the queue consumer, and serves until stopped. SIGTERM stops it
gracefully: no new messages, the one in hand finished or handed back within
the stop timeout. A second SIGTERM or SIGINT exits at once.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

from worker import names
from worker import settings as cfg
from worker.activity import ActivityReport
from worker.clients import client
from worker.consumer import EXIT_FORCED, Consumer
from worker.ecs import Service, TaskProtection, Waker
from worker.jobs import load_jobs
from worker.ledger import Ledger, Phase
from worker.phases import MapReduce
from worker.queues import queue_config

log = logging.getLogger("worker")


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"worker: environment variable {name} is not set")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Serve a Drover queue: map chunks or reduce partitions.",
    )
    parser.add_argument("role", choices=[p.value for p in Phase], help="which queue to serve")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--max-messages", type=int, help="exit after this many messages")
    parser.add_argument("--id", help="worker id in logs and records (default: host-pid)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get(names.ENV_LOG_LEVEL, "INFO"),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    defaults = cfg.Settings()
    phase = Phase(args.role)
    worker_id = (
        args.id or os.environ.get(names.ENV_WORKER_ID) or f"{socket.gethostname()}-{os.getpid()}"
    )
    load_jobs()

    sqs, s3 = client("sqs"), client("s3")
    reduce_queue_url = _env(names.ENV_REDUCE_QUEUE_URL)
    queue_url = _env(names.ENV_MAP_QUEUE_URL) if phase is Phase.MAP else reduce_queue_url
    wake: Callable[[int], object] | None = None
    cluster, reduce_service = (
        os.environ.get(names.ENV_CLUSTER),
        os.environ.get(names.ENV_REDUCE_SERVICE),
    )
    if phase is Phase.MAP and cluster and reduce_service:
        reducers = Service(
            reduce_service, int(os.environ.get(names.ENV_REDUCE_MAX_TASKS, defaults.max_reducers))
        )
        waker = Waker(client("ecs"), cluster=cluster, services={Phase.REDUCE.value: reducers})

        def wake(partitions: int) -> None:
            waker(Phase.REDUCE, partitions)

    handler = MapReduce(
        phase=phase,
        s3=s3,
        ledger=Ledger(dynamodb=client("dynamodb"), table=_env(names.ENV_TABLE)),
        worker_id=worker_id,
        sqs=sqs,
        reduce_queue_url=reduce_queue_url,
        map_queue_url=os.environ.get(names.ENV_MAP_QUEUE_URL),
        wake_reducers=wake,
    )
    consumer = Consumer(
        sqs=sqs,
        queue_url=queue_url,
        queue=queue_config(sqs, queue_url),
        handler=handler,
        worker_id=worker_id,
        receive_wait_s=int(os.environ.get(names.ENV_RECEIVE_WAIT_S, defaults.receive_wait_s)),
        receive_batch_size=defaults.receive_batch_size,
        stop_timeout_s=float(os.environ.get(names.ENV_STOP_TIMEOUT_S, defaults.stop_timeout_s)),
        protection=TaskProtection(),
        activity=ActivityReport(os.environ.get(names.ENV_ACTIVITY_FLEET)),
        burst=args.burst,
        max_messages=args.max_messages,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if consumer.stopping:
            os._exit(EXIT_FORCED)
        consumer.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("worker %s serving %s queue", worker_id, phase.value)
    # The clients' service models leave some 80,000 long-lived objects behind.
    # Freezing them keeps every collection a task's allocations trigger (json
    # builds a tuple per key of a map output) from walking them all again:
    # that made encoding a 150,000-word map output three times slower.
    gc.freeze()
    return consumer.run()


if __name__ == "__main__":
    sys.exit(main())
