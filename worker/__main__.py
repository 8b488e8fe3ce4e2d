"""The container program: `python -m worker map` or `python -m worker reduce`.

Reads its queue, table and the other fleet to wake from the environment
(worker.names, worker.wiring), starts its work process
(worker.isolation: each message runs there, so that one past the time limit
or of a cancelled job can be stopped), and serves the queue until stopped.
SIGTERM stops it gracefully: no new messages, the one in hand finished or
handed back within the stop timeout. A second SIGTERM or SIGINT exits at
once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import time
from types import FrameType

from worker import names
from worker import settings as cfg
from worker.activity import ActivityReport
from worker.clients import client
from worker.consumer import EXIT_FORCED, EXIT_UNAVAILABLE, Consumer, Unavailable
from worker.ecs import TaskProtection
from worker.exiting import exit_now
from worker.isolation import Isolated, WorkProcess
from worker.ledger import Phase
from worker.wiring import build_handler, max_task_s, queue_settings, queue_url

log = logging.getLogger("worker")

# The keepalive stops extending a message's visibility this long after the
# time limit, should the work process not have been stopped by then.
HOLD_MARGIN_S = 30.0


# The longest a local worker waits for the embedded AWS's queues.
QUEUES_READY_TIMEOUT_S = 90.0


def wait_for_queues(ready_file: str | None) -> None:
    """Wait until `ready_file` exists, if given (names.ENV_QUEUES_READY_FILE):
    a local file, looked at every few milliseconds, so that the wait costs no
    request. Past the timeout the worker goes on, and reading its queue
    says what is wrong."""
    if not ready_file:
        return
    deadline = time.monotonic() + QUEUES_READY_TIMEOUT_S
    while not os.path.exists(ready_file) and time.monotonic() < deadline:
        time.sleep(0.02)


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
    limit_s = max_task_s()

    def start() -> WorkProcess:
        return WorkProcess(role=phase.value, worker_id=worker_id)

    # The work process first: its start-up (an interpreter, the jobs, its
    # clients) then runs beside this process's own.
    handler = Isolated(
        start=start,
        starting=start(),
        supervisor=build_handler(phase, worker_id),
        limit_s=limit_s,
    )
    sqs = client("sqs")
    url = queue_url(phase)
    wait_for_queues(os.environ.get(names.ENV_QUEUES_READY_FILE))
    consumer = Consumer(
        sqs=sqs,
        queue_url=url,
        queue=queue_settings(sqs, phase, url),
        handler=handler,
        worker_id=worker_id,
        receive_wait_s=int(os.environ.get(names.ENV_RECEIVE_WAIT_S, defaults.receive_wait_s)),
        receive_batch_size=defaults.receive_batch_size,
        stop_timeout_s=float(os.environ.get(names.ENV_STOP_TIMEOUT_S, defaults.stop_timeout_s)),
        protection=TaskProtection(),
        activity=ActivityReport(os.environ.get(names.ENV_ACTIVITY_FLEET)),
        burst=args.burst,
        # A reducer's messages (a job's partitions) seldom come in a row.
        batch_deletes=phase is Phase.MAP,
        max_messages=args.max_messages,
        max_hold_s=limit_s + HOLD_MARGIN_S,
        before_forced_exit=handler.kill_now,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if consumer.stopping:
            handler.kill_now()
            os._exit(EXIT_FORCED)
        consumer.request_stop()
        consumer.interrupt_wait()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        handler.open()
    except Unavailable as e:
        log.error("worker %s cannot start: %s", worker_id, e)
        return EXIT_UNAVAILABLE
    log.info(
        "worker %s serving %s queue (work process %s, at most %g s a message)",
        worker_id,
        phase.value,
        handler.process.pid if handler.process else "-",
        limit_s,
    )
    try:
        return consumer.run()
    finally:
        handler.close()


if __name__ == "__main__":
    # Without the interpreter's teardown (worker.exiting).
    exit_now(main())
