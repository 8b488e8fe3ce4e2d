"""Each message runs in a work process that the worker can stop: the time
limit per message (maxTaskSeconds), and `cancel` reaching work in hand.

Why a process, and this one. Python's `re` holds the GIL for the whole of a
match, so in the process that runs a catastrophic pattern no thread runs
and no signal handler either (Python calls handlers between bytecodes):
nothing in that process can notice the clock, extend the message's
visibility or stop. Only another process can, by killing the one that
works. Of the ways to have one:

- Exit the worker and let ECS replace the task: the worker that must exit
  is the one stuck in the match, so something outside it has to kill it
  anyway, and every stop (a time limit, each task holding work of a
  cancelled job) would cost a new task: 30 to 60 s to start, a minute
  billed at least.
- Fork a child per message: a fork copies a process that runs threads (the
  heartbeat), possibly while one holds a lock the child then needs, and
  botocore's connection pools are not fork-safe, so each child would build
  its clients and connections anew for every chunk.
- A long-lived work process, started fresh (`python -m worker.child ROLE`,
  its own interpreter and clients, no inherited locks) and replaced only
  when it was killed or died. A message costs two small writes on a pipe.
  This is what Drover does.

The worker (the parent) receives messages, keeps them alive (keepalive),
acts on verdicts (consumer) and, while the work process runs one message,
watches it (`Isolated.handle`):

- at `limit_s` it kills the work process and the attempt is recorded as a
  failure, `TimeLimit: ...`; the message comes back after the usual backoff
  and, after its queue's last receive, goes to the DLQ like any failure;
- every few seconds it asks whether the message's job still takes work; a
  job cancelled (or failed, or done) meanwhile has its work killed and its
  message deleted, as its unread messages are;
- a work process that dies by itself (the kernel's OOM killer, a crash in
  native code) is recorded as a failed attempt, `WorkerDied: ...`, and
  replaced; the worker lives on.

The work process dies with its worker however the worker ends (on Linux
the kernel kills it, PR_SET_PDEATHSIG; see worker.child). It loads the job
modules; one that fails to import does not stop it (worker.jobs.registry):
the chunks of that module's jobs fail with the import error, and every
other job runs. A work process that cannot start at all (it dies or hangs
before it is ready: a job module that kills the interpreter as it is
imported, an environment it cannot run in) makes the worker stop with
EXIT_UNAVAILABLE rather than take messages it cannot run; the local fleet
counts that as a worker that died at start-up (submit.fleet), and ECS's
deployment circuit breaker stops a deployment whose tasks do it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, Protocol

from worker.consumer import DeadLetter, Delete, Delivery, Retry, Unavailable, Verdict

log = logging.getLogger(__name__)

# How long a work process may take to import and build its clients.
START_TIMEOUT_S = 60.0
# How often the parent asks whether the job of the message in hand still
# takes work: the job state is read at most this often (as the handler
# itself does, worker.phases.JOB_STATE_TTL_S), so `cancel` reaches work in
# hand within about this long, and a chunk shorter than this costs no read.
CHECK_EVERY_S = 5.0
# The longest the parent sleeps on the pipe between looks at the clock.
POLL_S = 1.0
# How long a work process told to finish (its pipe closed) may take.
CLOSE_TIMEOUT_S = 5.0


class WorkProcessDied(RuntimeError):
    """The work process ended without answering."""


class Supervisor(Protocol):
    """What the parent asks of the handler's domain while work runs elsewhere."""

    def abandoned(self, delivery: Delivery) -> Verdict | None:
        """A verdict if the message's work is no longer wanted (its job was
        cancelled), else None."""

    def stopped(self, delivery: Delivery, error: str) -> Verdict:
        """Record an attempt that was stopped with `error`; its verdict."""


# The wire between the two processes: JSON, one message a frame.


def delivery_to_wire(d: Delivery) -> bytes:
    return json.dumps(
        {
            "message_id": d.message_id,
            "body": d.body,
            "receives": d.receives,
            "last_receive": d.last_receive,
        }
    ).encode()


def delivery_from_wire(raw: bytes) -> Delivery:
    d = json.loads(raw)
    return Delivery(
        message_id=str(d["message_id"]),
        body=str(d["body"]),
        receives=int(d["receives"]),
        last_receive=bool(d["last_receive"]),
    )


def verdict_to_wire(v: Verdict) -> bytes:
    match v:
        case Delete(outcome):
            out: dict[str, Any] = {"verdict": "delete", "outcome": outcome}
        case Retry(after_s):
            out = {"verdict": "retry", "after_s": after_s}
        case DeadLetter(reason):
            out = {"verdict": "dead_letter", "reason": reason}
    return json.dumps(out).encode()


def error_to_wire(error: str) -> bytes:
    return json.dumps({"error": error}).encode()


def verdict_from_wire(raw: bytes) -> Verdict:
    """The verdict the work process sent; RuntimeError if its handler raised."""
    d = json.loads(raw)
    match d.get("verdict"):
        case "delete":
            return Delete(str(d["outcome"]))
        case "retry":
            return Retry(int(d["after_s"]))
        case "dead_letter":
            return DeadLetter(str(d["reason"]))
    raise RuntimeError(f"the work process failed: {d.get('error', d)}")


READY = b'{"ready": true}'


class WorkProcess:
    """`python -m worker.child ROLE`, and the pipe to it."""

    def __init__(self, *, role: str, worker_id: str) -> None:
        parent_end, child_end = Pipe()
        self.conn: Connection = parent_end
        fd = child_end.fileno()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker.child",
                role,
                "--id",
                worker_id,
                "--fd",
                str(fd),
                "--parent",
                str(os.getpid()),
            ],
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
        )
        child_end.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        """Until the work process says it is ready; Unavailable if it died
        or took longer than `timeout_s`."""
        try:
            if self.conn.poll(timeout_s) and self.conn.recv_bytes() == READY:
                return
            reason = f"not ready after {timeout_s:g} s"
        except (EOFError, OSError):
            reason = self.ended()
        self.kill()
        raise Unavailable(f"the work process could not start: {reason}")

    def send(self, delivery: Delivery) -> None:
        try:
            self.conn.send_bytes(delivery_to_wire(delivery))
        except OSError as e:
            raise WorkProcessDied(self.ended()) from e

    def answer(self, timeout_s: float) -> Verdict | None:
        """The verdict, if one comes within `timeout_s`; else None."""
        try:
            if not self.conn.poll(max(0.0, timeout_s)):
                return None
            raw = self.conn.recv_bytes()
        except (EOFError, OSError) as e:
            raise WorkProcessDied(self.ended()) from e
        return verdict_from_wire(raw)

    def kill(self) -> None:
        """Stop the work process at once, whatever it is doing."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.conn.close()

    def signal_kill(self) -> None:
        """From a signal handler, just before the worker exits: no waiting."""
        with contextlib.suppress(OSError):
            os.kill(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        """Let the work process finish (it exits when its pipe closes)."""
        self.conn.close()
        try:
            self.proc.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def ended(self) -> str:
        try:
            code = self.proc.wait(2)
        except subprocess.TimeoutExpired:
            return "it did not answer"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if code == -signal.SIGKILL else ""
            return f"the work process was killed by {name}{hint}"
        return f"the work process exited with code {code}"


class Isolated:
    """A consumer Handler that runs each message in the work process and
    stops it past `limit_s`, or when the supervisor no longer wants it."""

    def __init__(
        self,
        *,
        start: Callable[[], WorkProcess],
        supervisor: Supervisor,
        limit_s: float,
        check_every_s: float = CHECK_EVERY_S,
        start_timeout_s: float = START_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        starting: WorkProcess | None = None,
    ) -> None:
        """`starting`: a work process started already, used first (a worker
        starts it before anything else, so that the two interpreters' start-up
        overlaps)."""
        self.start = start
        self.starting = starting
        self.supervisor = supervisor
        self.limit_s = limit_s
        self.check_every_s = check_every_s
        self.start_timeout_s = start_timeout_s
        self.clock = clock
        self.process: WorkProcess | None = None

    def open(self) -> None:
        """Start the work process now; Unavailable if it cannot start."""
        self._ready()

    def _ready(self) -> WorkProcess:
        if self.process is not None and not self.process.alive:
            # It died between messages: no message of its was lost.
            log.warning("the work process ended while idle (%s)", self.process.ended())
            self.process = None
        if self.process is None:
            process, self.starting = self.starting or self.start(), None
            process.wait_ready(self.start_timeout_s)
            self.process = process
        return self.process

    def handle(self, delivery: Delivery) -> Verdict:
        process = self._ready()
        started = self.clock()
        deadline = started + self.limit_s
        next_check = started + self.check_every_s
        try:
            process.send(delivery)
            while True:
                now = self.clock()
                verdict = process.answer(min(POLL_S, deadline - now, next_check - now))
                if verdict is not None:
                    return verdict
                now = self.clock()
                if now >= deadline:
                    # One last look: an answer that came with the deadline counts.
                    verdict = process.answer(0)
                    if verdict is not None:
                        return verdict
                    self._kill()
                    return self.supervisor.stopped(
                        delivery,
                        f"TimeLimit: still running after {self.limit_s:g} s, the most one "
                        "message may take (maxTaskSeconds); stopped",
                    )
                if now >= next_check:
                    next_check = now + self.check_every_s
                    verdict = self._abandoned(delivery)
                    if verdict is not None:
                        self._kill()
                        return verdict
        except WorkProcessDied as e:
            self.process = None
            log.warning("message %s: %s", delivery.message_id, e)
            return self.supervisor.stopped(delivery, f"WorkerDied: {e}")

    def _abandoned(self, delivery: Delivery) -> Verdict | None:
        try:
            return self.supervisor.abandoned(delivery)
        except Exception as e:  # a look, not a condition for the work
            log.warning("message %s: could not check its job: %s", delivery.message_id, e)
            return None

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def kill_now(self) -> None:
        """From a signal handler, just before the worker exits."""
        if self.process is not None:
            self.process.signal_kill()

    def close(self) -> None:
        if self.starting is not None:
            self.starting.kill()
            self.starting = None
        if self.process is not None:
            self.process.close()
            self.process = None
