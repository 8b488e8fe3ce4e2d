"""Local mode: the embedded AWS (a process of its own) plus a local fleet.

`LocalDrover` is used in two ways: as a context manager by `run --local` (a
one-shot that starts everything, runs one job and tears it all down), and by
the long-running daemon behind `local up`, which `local status` and
`local down` reach through a state file in DROVER_HOME.

Starting takes two calls so that the caller's own work, and the workers'
start-up, overlap the embedded AWS's start: `launch` binds its port,
starts its process and makes the fleet, and returns at once; `start` waits
until it serves, creates the bucket, table and queues (whose names and URLs
are known before, `local_resources`), and starts the fleet's supervisor.
The fleet's workers are started by a wake-up, which may come as soon as
`launch` returns (`run --local` wakes the map workers as soon as it knows
the input's size; they wait for their queue), or by the queue's depth.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from submit.clients import Clients
from submit.embedded import (
    local_client,
    local_env,
    local_resources,
    provision,
)
from submit.embedded_process import EmbeddedProcess, drover_home, python_path, take_early
from submit.errors import OperationalError
from submit.fleet import Fleet
from submit.resources import LocalState, Resources, process_alive, state_path
from worker import names
from worker import settings as cfg
from worker.ledger import Phase

log = logging.getLogger(__name__)

# Locally, an idle fleet scales in after seconds, not the cloud's minutes:
# there are no CloudWatch delays to wait out.
LOCAL_IDLE_S = 5.0
# The stack's long poll: an idle worker asks once per this many seconds, and
# a stop ends its wait at once (worker.consumer), so shutting down does not
# wait for it.
LOCAL_RECEIVE_WAIT_S = 20
LOCAL_STOP_TIMEOUT_S = 30.0
# How often the local fleet looks at its queues (CloudWatch: once a minute).
LOCAL_POLL_S = 0.25
# The local queues' visibility timeout. The heartbeat extends the message in
# hand every 2 s, so this bounds only how long a killed worker's chunk stays
# hidden; the deployed default (30 s) waits for a host that is merely slow.
LOCAL_VISIBILITY_TIMEOUT_S = 6


class LocalError(OperationalError):
    pass


def local_settings() -> cfg.Settings:
    """cdk.json's settings, as the stack builds them, with the local queues'
    visibility timeout."""
    return cfg.load().with_overrides(visibility_timeout_s=LOCAL_VISIBILITY_TIMEOUT_S)


@dataclass
class LocalOptions:
    port: int = 0
    max_workers: int = os.cpu_count() or 2
    max_reducers: int = 2
    idle_s: float = LOCAL_IDLE_S
    poll_s: float = LOCAL_POLL_S
    stop_timeout_s: float = LOCAL_STOP_TIMEOUT_S
    settings: cfg.Settings | None = None
    log_dir: Path | None = None
    extra_env: dict[str, str] | None = None
    # The job modules every worker loads (names, or absolute paths).
    job_modules: tuple[str, ...] = ()


class LocalDrover:
    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self.settings = self.options.settings or local_settings()
        self.log_dir = self.options.log_dir or drover_home() / "logs"
        # `python -m submit run --local` started it before its imports.
        early = take_early() if self.options.port == 0 and self.options.log_dir is None else None
        self.aws = early or EmbeddedProcess(
            port=self.options.port, log_path=self.log_dir / "embedded-aws.log"
        )
        self.resources: Resources | None = None
        self.fleet: Fleet | None = None
        self._clients: Clients | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Made by `launch`; see names.ENV_QUEUES_READY_FILE.
        self._queues_ready: Path | None = None

    def launch(self) -> None:
        """Start the embedded AWS's process and make the fleet, returning at
        once: workers woken from here on start beside the embedded AWS and
        wait for their queue, which `start` creates."""
        if self.aws.proc is None:
            self.aws.start()
        if self.fleet is None:
            endpoint = self.aws.endpoint_url
            self.resources = local_resources(endpoint, self.settings)
            self._queues_ready = Path(tempfile.mkdtemp(prefix="drover-local-")) / "queues-ready"
            env = {
                **local_env(endpoint),
                **self.resources.worker_env(),
                # What `start` makes the queues with.
                names.ENV_VISIBILITY_TIMEOUT_S: str(self.settings.visibility_timeout_s),
                names.ENV_MAX_RECEIVE_COUNT: str(self.settings.max_receive_count),
                names.ENV_RECEIVE_WAIT_S: str(LOCAL_RECEIVE_WAIT_S),
                names.ENV_STOP_TIMEOUT_S: str(self.options.stop_timeout_s),
                # The same limit per message as a deployed fleet's.
                names.ENV_MAX_TASK_SECONDS: str(self.settings.max_task_s),
                names.ENV_JOB_MODULES: ",".join(self.options.job_modules),
                # Its workers read the local files of jobs submitted here.
                names.ENV_READ_LOCAL_FILES: "1",
                # And may start before their queues exist: `start` creates
                # this file once they do.
                names.ENV_QUEUES_READY_FILE: str(self._queues_ready),
                **(self.options.extra_env or {}),
            }
            self.fleet = Fleet(
                sqs=self.clients().sqs,
                map_queue_url=self.resources.map_queue_url,
                reduce_queue_url=self.resources.reduce_queue_url,
                env=env,
                max_workers=self.options.max_workers,
                max_reducers=self.options.max_reducers,
                idle_s=self.options.idle_s,
                poll_s=self.options.poll_s,
                log_dir=self.log_dir,
            )

    def start(self) -> Resources:
        self.launch()
        assert self.fleet is not None
        try:
            endpoint = self.aws.wait_ready()
            clients = self.clients()
            created = provision(
                s3=clients.s3,
                sqs=clients.sqs,
                dynamodb=clients.dynamodb,
                settings=self.settings,
                endpoint_url=endpoint,
            )
            if created != self.resources:
                raise LocalError(
                    f"the embedded AWS made {created}, where its workers expect {self.resources}"
                )
            assert self._queues_ready is not None
            self._queues_ready.touch()
            self._thread = threading.Thread(
                target=self.fleet.run,
                args=(self._stop,),
                name=names.LOCAL_FLEET_THREAD,
                daemon=True,
            )
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        return created

    def clients(self) -> Clients:
        """Clients of the embedded AWS, made once (botocore's are thread-safe:
        the fleet's supervisor shares them). Usable as soon as it is launched:
        a request made before it serves waits for it."""
        if self._clients is None:
            if self.aws.proc is None:
                self.aws.start()
            endpoint = self.aws.endpoint_url
            self._clients = Clients(
                s3=local_client("s3", endpoint),
                sqs=local_client("sqs", endpoint),
                dynamodb=local_client("dynamodb", endpoint),
            )
        return self._clients

    def stop(self, *, at_once: bool = False) -> None:
        """Stop the fleet (its workers finish or hand back the chunks in
        hand; `at_once`, they are killed) and the embedded AWS."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.fleet is not None:
            self.fleet.shutdown(self.options.stop_timeout_s + 5, at_once=at_once)
        self.aws.stop()
        if self._queues_ready is not None:
            shutil.rmtree(self._queues_ready.parent, ignore_errors=True)

    def __enter__(self) -> LocalDrover:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# The daemon behind `local up` ------------------------------------------------


def fleet_status_path() -> Path:
    return drover_home() / "fleet.json"


def running_state() -> LocalState | None:
    """The running embedded stack's state, or None (a stale file is removed)."""
    path = state_path()
    state = LocalState.read(path)
    if state is None:
        return None
    if not process_alive(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def up(options: LocalOptions, timeout_s: float = 60) -> LocalState:
    """Start the daemon in the background and wait until it serves."""
    existing = running_state()
    if existing is not None:
        raise LocalError(
            f"the embedded AWS is already running (pid {existing.pid}, "
            f"{existing.endpoint_url}); `python -m submit local down` stops it"
        )
    home = drover_home()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "local.log"
    cmd = [
        sys.executable,
        "-m",
        "submit.local",
        "--port",
        str(options.port),
        "--max-workers",
        str(options.max_workers),
        "--max-reducers",
        str(options.max_reducers),
        "--idle-seconds",
        str(options.idle_s),
        *(arg for module in options.job_modules for arg in ("--job-module", module)),
    ]
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # The project first, the caller's own path after it: the workers
            # it starts import the user's job modules from there.
            env={**os.environ, "PYTHONPATH": python_path()},
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = LocalState.read(state_path())
        if state is not None and state.pid == proc.pid:
            return state
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-5:]
            raise LocalError("the embedded AWS did not start:\n  " + "\n  ".join(tail))
        time.sleep(0.1)
    proc.terminate()
    raise LocalError(f"the embedded AWS did not start within {timeout_s:.0f}s; see {log_path}")


def down(timeout_s: float = LOCAL_STOP_TIMEOUT_S + 15) -> LocalState | None:
    """Stop the daemon (it stops its workers gracefully); None if none ran."""
    state = running_state()
    if state is None:
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while process_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_alive(state.pid):
        os.kill(state.pid, signal.SIGKILL)
    state_path().unlink(missing_ok=True)
    return state


def serve(options: LocalOptions) -> int:
    local = LocalDrover(options)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    resources = local.start()
    assert local.fleet is not None
    state = LocalState(
        pid=os.getpid(),
        port=local.aws.port,
        endpoint_url=local.aws.endpoint_url,
        max_workers=options.max_workers,
        resources=resources,
        job_modules=list(options.job_modules),
    )
    state.write(state_path())
    log.info(
        "embedded AWS on %s, fleet of up to %d workers", state.endpoint_url, options.max_workers
    )
    try:
        while not stop.wait(options.poll_s):
            _write_fleet_status(local.fleet)
    finally:
        local.stop()
        fleet_status_path().unlink(missing_ok=True)
        if LocalState.read(state_path()) == state:
            state_path().unlink(missing_ok=True)
    return 0


def _write_fleet_status(fleet: Fleet) -> None:
    status: dict[str, Any] = {
        role.value: {
            "workers": len(fleet.workers(role)),
            "peak": fleet.peak(role),
            "max": fleet.pools[role].max_size,
            "timeline": fleet.timeline(role)[-20:],
            "broken": fleet.pools[role].broken,
        }
        for role in Phase
    }
    path = fleet_status_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)
    # Keep the history short in a long-running daemon.
    del fleet.history[:-1000]


def fleet_problem() -> str | None:
    """Why the running local fleet cannot work (a pool gave up), or None."""
    status = read_fleet_status() or {}
    return next((p["broken"] for p in status.values() if p.get("broken")), None)


def read_fleet_status() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(fleet_status_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m submit.local")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max-reducers", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=LOCAL_IDLE_S)
    parser.add_argument("--job-module", action="append", default=[], dest="job_modules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return serve(
        LocalOptions(
            port=args.port,
            max_workers=args.max_workers,
            max_reducers=args.max_reducers,
            idle_s=args.idle_seconds,
            job_modules=tuple(args.job_modules),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
