"""The work process of a worker (see worker.isolation for why there is one):
`python -m worker.child map|reduce --fd N --parent PID`, started by the
worker, never by hand.

It loads the job modules (one that fails to import is kept as a failure
for its jobs' chunks to report, worker.jobs.registry), builds its own
MapReduce handler and clients, says it is ready, then runs one message at
a time as the worker sends
them on the pipe (file descriptor N), answering each with its verdict. It
exits when the pipe closes. Signals are the worker's business: the work
process ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process
group), and dies with its worker.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

from worker import names
from worker.exiting import exit_now
from worker.isolation import READY, delivery_from_wire, error_to_wire, verdict_to_wire
from worker.jobs import load_jobs
from worker.ledger import Phase
from worker.wiring import build_handler

log = logging.getLogger("worker.child")

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the worker ends, however it ends (SIGKILL included).

    On Linux the kernel does it (PR_SET_PDEATHSIG), even while this process
    is stuck in a regular expression; elsewhere a thread looks every second,
    which a match that holds the GIL delays."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the worker ended before the line above
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.child")
    parser.add_argument("role", choices=[p.value for p in Phase])
    parser.add_argument("--id", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)

    die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=os.environ.get(names.ENV_LOG_LEVEL, "INFO"),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    conn = Connection(args.fd)
    load_jobs()
    handler = build_handler(Phase(args.role), args.id)
    # The clients' service models leave some 80,000 long-lived objects behind.
    # Freezing them keeps every collection a task's allocations trigger (json
    # builds a tuple per key of a map output) from walking them all again:
    # that made encoding a 150,000-word map output three times slower.
    gc.freeze()
    conn.send_bytes(READY)
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return 0
        delivery = delivery_from_wire(raw)
        try:
            answer = verdict_to_wire(handler.handle(delivery))
        except Exception as e:
            log.exception("message %s: unexpected error", delivery.message_id)
            answer = error_to_wire(f"{type(e).__name__}: {e}")
        conn.send_bytes(answer)


if __name__ == "__main__":
    # Without the interpreter's teardown (worker.exiting).
    exit_now(main())
