"""The local fleet: worker processes scaled on queue depth, as on Fargate.

Each pool (map, reduce) follows the stack's rules (infra/constructs/fleet.py)
from the shared settings:

- Wake: `wake(role, need)` raises the pool to min(need, its maximum) at
  once and never lowers it, as submit does to a deployed service.
- Size: a pool running fewer workers than its backlog (visible plus in
  flight) is set to the backlog's level (`worker.settings.scaling_level`),
  never above the backlog; a pool with enough workers is left alone, so a
  draining pool is never shrunk under its work.
- Rest: after the backlog has been empty for the idle window while workers
  ran, the pool goes to zero. A reduce pool counts as idle only while the
  map queue is empty too: reducers woken early for a job (`run --local`
  does) wait out its map phase instead of retiring a few seconds into it
  and being started again, start-up and all, on the job's last stretch.

The cloud evaluates once a minute on CloudWatch metrics; the local fleet
every `poll_s` on the queue itself, which has none of CloudWatch's gaps and
delays, so it needs none of the stack's precautions against them.

A worker process that dies is replaced at the next step, unless it died at
start-up: it exited by itself with an error within `START_GRACE_S`, or with
EXIT_UNAVAILABLE (its work process could not start, which can take up to
the work process's start timeout, worker.isolation). Then the next one
waits, twice as long after each such death in a row, and after
`MAX_START_FAILURES` of them the pool is marked broken and starts no more;
a worker that has run past `STARTED_AFTER_S` ends the row. The pool's
reason, with the last lines of the last worker's log, is what `status`,
`wait` and `fleet` show: a worker whose environment is wrong, or whose work
process dies as a job module is imported, would otherwise be restarted
without end.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from submit.embedded_process import python_path
from worker.consumer import EXIT_UNAVAILABLE
from worker.isolation import START_TIMEOUT_S
from worker.ledger import Phase
from worker.settings import scaling_level

log = logging.getLogger(__name__)

# A worker that exits with an error this soon after it started died at
# start-up.
START_GRACE_S = 10.0
# A worker running this long got past its start: its work process, which
# may take up to START_TIMEOUT_S to be ready, is.
STARTED_AFTER_S = START_TIMEOUT_S + START_GRACE_S
# Start-up failures in a row after which a pool gives up.
MAX_START_FAILURES = 5
# The wait before the start after a start-up failure: doubled after each.
START_BACKOFF_S = 0.5
# Log lines quoted when a pool gives up.
LOG_TAIL_LINES = 8


@dataclass
class Sample:
    t: float
    role: str
    visible: int
    in_flight: int
    workers: int


@dataclass
class Pool:
    role: Phase
    queue_url: str
    max_size: int
    desired: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Told to stop, still finishing: waited for at shutdown.
    retiring: list[subprocess.Popen[bytes]] = field(default_factory=list)
    idle_since: float | None = None
    # Visible plus in-flight messages at the last look.
    backlog: int = 0
    started: int = 0
    peak: int = 0
    # Start-up failures in a row, when the next start may be, and why the
    # pool gave up (None while it has not).
    start_failures: int = 0
    next_start_at: float = 0.0
    broken: str | None = None
    started_at: dict[int, float] = field(default_factory=dict)
    # pid -> its log, and where in it this process's lines begin (a worker
    # id's log is appended to by every run that uses the id).
    log_of: dict[int, tuple[Path, int]] = field(default_factory=dict)


class Fleet:
    def __init__(
        self,
        *,
        sqs: Any,
        map_queue_url: str,
        reduce_queue_url: str,
        env: Mapping[str, str],
        max_workers: int,
        max_reducers: int,
        idle_s: float,
        log_dir: Path,
        poll_s: float = 1.0,
        worker_args: tuple[str, ...] = (),
    ) -> None:
        self.sqs = sqs
        self.env = {**os.environ, **env, "PYTHONPATH": python_path()}
        self.idle_s = idle_s
        self.poll_s = poll_s
        self.log_dir = log_dir
        self.worker_args = worker_args
        self.pools = {
            Phase.MAP: Pool(Phase.MAP, map_queue_url, max_workers),
            Phase.REDUCE: Pool(Phase.REDUCE, reduce_queue_url, max_reducers),
        }
        self.history: list[Sample] = []
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._drained = threading.Event()
        self._logs: list[IO[bytes]] = []

    # Scaling ----------------------------------------------------------------

    def step(self) -> None:
        with self._lock:
            now = time.monotonic()
            # Work still queued for the map fleet is work coming to the reducers.
            upstream = 0
            for pool in self.pools.values():
                attrs = self.sqs.get_queue_attributes(
                    QueueUrl=pool.queue_url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                visible = int(attrs["ApproximateNumberOfMessages"])
                in_flight = int(attrs["ApproximateNumberOfMessagesNotVisible"])
                self._reap(pool)
                backlog = visible + in_flight
                if backlog == 0 and pool.backlog and pool.role is Phase.REDUCE:
                    self._drained.set()
                pool.backlog = backlog
                if backlog == 0 and upstream == 0:
                    pool.idle_since = pool.idle_since or now
                    if now - pool.idle_since >= self.idle_s:
                        pool.desired = 0
                else:
                    pool.idle_since = None
                    if backlog > len(pool.procs):
                        pool.desired = scaling_level(backlog, pool.max_size)
                self._converge(pool)
                upstream = backlog if pool.role is Phase.MAP else 0
                self.history.append(
                    Sample(
                        now - self.started_at, pool.role.value, visible, in_flight, len(pool.procs)
                    )
                )

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception as e:  # a hiccup of the embedded AWS must not end the fleet
                log.warning("fleet step failed: %s", e)
            stop.wait(self.poll_s)

    def _reap(self, pool: Pool) -> None:
        now = time.monotonic()
        alive = []
        for p in pool.procs:
            code = p.poll()
            started = pool.started_at.get(p.pid, now)
            if code is None:
                alive.append(p)
                if now - started >= STARTED_AFTER_S:
                    pool.start_failures = 0
                continue
            written = pool.log_of.pop(p.pid, None)
            pool.started_at.pop(p.pid, None)
            if code == 0:
                continue
            log.warning("%s worker %d exited with %d", pool.role.value, p.pid, code)
            # Exited by itself with an error; one killed (a negative code:
            # by a signal, as scale-in and the chaos tests do) did not fail.
            # EXIT_UNAVAILABLE says so itself, however long its work process
            # took to fail.
            if code == EXIT_UNAVAILABLE or (code > 0 and now - started < START_GRACE_S):
                self._start_failed(pool, code, written, now)
        pool.procs = alive
        pool.retiring = [p for p in pool.retiring if p.poll() is None]

    def _start_failed(
        self, pool: Pool, code: int, written: tuple[Path, int] | None, now: float
    ) -> None:
        pool.start_failures += 1
        pool.next_start_at = now + START_BACKOFF_S * 2 ** (pool.start_failures - 1)
        if pool.start_failures < MAX_START_FAILURES or pool.broken:
            return
        tail = ""
        if written is not None and written[0].exists():
            log_path, begins = written
            with log_path.open("rb") as f:
                f.seek(begins)
                lines = f.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            tail = f"; the last lines of {log_path}:\n" + "\n".join(f"  {x}" for x in lines)
        why = ", its work process could not start" if code == EXIT_UNAVAILABLE else ""
        pool.broken = (
            f"the local {pool.role.value} workers die at start-up ({pool.start_failures} in "
            f"a row, the last with exit code {code}{why}); no more are started{tail}"
        )
        log.error("%s", pool.broken)

    def problem(self) -> str | None:
        """Why the fleet cannot do its work, or None."""
        with self._lock:
            return next((p.broken for p in self.pools.values() if p.broken), None)

    def _converge(self, pool: Pool) -> None:
        while len(pool.procs) < pool.desired:
            if pool.broken or time.monotonic() < pool.next_start_at:
                break
            pool.procs.append(self._spawn(pool))
        while len(pool.procs) > pool.desired:
            p = pool.procs.pop()
            p.send_signal(signal.SIGTERM)
            pool.retiring.append(p)
        pool.peak = max(pool.peak, len(pool.procs))

    def _spawn(self, pool: Pool) -> subprocess.Popen[bytes]:
        pool.started += 1
        worker_id = f"local-{pool.role.value}-{pool.started}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{worker_id}.log"
        out = log_path.open("ab")
        begins = out.tell()
        self._logs.append(out)
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", pool.role.value, "--id", worker_id, *self.worker_args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        pool.started_at[proc.pid] = time.monotonic()
        pool.log_of[proc.pid] = (log_path, begins)
        return proc

    def wake(self, role: Phase | str, need: int) -> None:
        """Start workers now for work just queued, as submit raises a deployed
        service's desired count (worker.ecs.Wake); scale-in stays with the
        idle rule."""
        with self._lock:
            pool = self.pools[Phase(role)]
            pool.desired = max(pool.desired, min(pool.max_size, need))
            pool.idle_since = None
            self._converge(pool)

    def nap(self, seconds: float) -> None:
        """Wait up to `seconds`, less if the reducers' queue drains
        meanwhile: the moment a job's last partition is done, for whoever
        follows it."""
        if self._drained.wait(seconds):
            self._drained.clear()

    # Inspection and shutdown ------------------------------------------------

    def workers(self, role: Phase) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return list(self.pools[role].procs)

    def peak(self, role: Phase) -> int:
        return self.pools[role].peak

    def timeline(self, role: Phase = Phase.MAP) -> list[tuple[float, int]]:
        """(seconds since start, workers) at each change of the worker count."""
        out: list[tuple[float, int]] = []
        for s in self.history:
            if s.role == role.value and (not out or out[-1][1] != s.workers):
                out.append((round(s.t, 1), s.workers))
        return out

    def shutdown(self, timeout_s: float, *, at_once: bool = False) -> None:
        """SIGTERM every worker, wait up to `timeout_s`, then SIGKILL; or,
        `at_once`, SIGKILL them now (their work processes die with them):
        for a run given up, whose chunks in hand no one will wait for."""
        with self._lock:
            procs = [p for pool in self.pools.values() for p in (*pool.procs, *pool.retiring)]
            for pool in self.pools.values():
                pool.procs, pool.retiring, pool.desired = [], [], 0
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL if at_once else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self._logs:
            f.close()
        self._logs.clear()
