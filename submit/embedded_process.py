"""The embedded AWS's process, started and stopped from outside: what
`python -m submit run --local` needs before it imports anything else.

This module uses the standard library only (and `worker.names`, plain
data), so that `submit/__main__.py` can start the embedded AWS's process
first thing (`launch_early`), before the CLI imports boto3 and its own
modules: the two start-ups, each a few tenths of a second of one core,
then overlap instead of following each other. `LocalDrover` takes the
process so started (`take_early`) or starts one itself.

The caller binds the port and hands the process the listening socket, so
the endpoint is known, and requests to it wait in the socket's backlog,
before the process serves. The process tells its port on standard output
once it serves, and exits when its standard input closes: when the process
that started it stops it or dies, however it dies (one started early and
never taken ends with the CLI).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from worker import names

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# How long the embedded AWS's process may take to serve.
START_TIMEOUT_S = 60.0
# Connections that may wait for it meanwhile: a local fleet's workers and
# the CLI, with room to spare.
LISTEN_BACKLOG = 128


def python_path() -> str:
    """The project first, the caller's own PYTHONPATH after it (where user
    job modules may live)."""
    path = [
        str(PROJECT_ROOT),
        *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    return os.pathsep.join(dict.fromkeys(path))


def drover_home() -> Path:
    """Where the embedded AWS keeps its state file and logs."""
    return Path(os.environ.get(names.ENV_HOME, Path.home() / ".drover"))


def default_log_path() -> Path:
    return drover_home() / "logs" / "embedded-aws.log"


def listen_on(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port), bound as
    the embedded AWS binds (a port left in TIME_WAIT is free); OSError if
    the port is taken."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener


class EmbeddedError(RuntimeError):
    """The embedded AWS's process could not start."""


class EmbeddedProcess:
    """moto's server in a process of its own (`python -m submit.embedded`).

    `start` launches it and returns at once, so that the caller can do its
    own work while it starts; `wait_ready` returns its endpoint once it
    serves; `stop` ends it."""

    def __init__(self, *, port: int = 0, log_path: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._ready = False

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind the port and start the process, returning at once. The
        endpoint is known from here on, and a request sent to it before the
        process serves waits in the socket's backlog rather than failing:
        local workers may start beside the embedded AWS, not after it."""
        try:
            listener = listen_on(self.port)
        except OSError as e:
            raise EmbeddedError(f"port {self.port} on 127.0.0.1: {e.strerror or e}") from e
        self.port = listener.getsockname()[1]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        with listener:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "submit.embedded", "--fd", str(listener.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log if self._log is not None else subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": python_path()},
                pass_fds=(listener.fileno(),),
            )

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """The endpoint, once the server answers; EmbeddedError if it died or
        did not serve within `timeout_s`."""
        if self._ready:
            return self.endpoint_url
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdout is not None
        result: dict[str, Any] = {}

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            result["line"] = self.proc.stdout.readline()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        line = result.get("line", b"")
        try:
            self.port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            self.stop()
            where = f"; see {self.log_path}" if self.log_path is not None else ""
            why = "it exited" if line or not reader.is_alive() else f"not within {timeout_s:g} s"
            raise EmbeddedError(f"the embedded AWS did not start ({why}){where}") from None
        self._ready = True
        return self.endpoint_url

    def stop(self) -> None:
        """End the process: it exits as its standard input closes."""
        proc, self.proc = self.proc, None
        self._ready = False
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


_early: EmbeddedProcess | None = None
# When `launch_early` was called: the command's start, before its imports.
_called_at: float | None = None


def launch_early(argv: Sequence[str]) -> None:
    """For `run --local` (not its --help), start the embedded AWS's process
    now, on any free port, logging where `LocalDrover` would. A failure
    here is left for `LocalDrover` to meet and report."""
    global _early, _called_at
    _called_at = time.monotonic()
    args = list(argv)
    if not args or args[0] != "run" or "--local" not in args:
        return
    if {"-h", "--help"} & set(args):
        return
    process = EmbeddedProcess(log_path=default_log_path())
    try:
        process.start()
    except (EmbeddedError, OSError):
        return
    _early = process


def take_early() -> EmbeddedProcess | None:
    """The process `launch_early` started, once; None if it started none."""
    global _early
    process, _early = _early, None
    return process


def command_started_at() -> float | None:
    """time.monotonic() at the command's start, before its imports, if it
    was started as `python -m submit` or `drover` (both call `launch_early`
    first)."""
    return _called_at


def console_main() -> int:
    """The `drover` console script: `launch_early`, then the CLI."""
    launch_early(sys.argv[1:])
    from submit.cli import console_main as cli_main

    return cli_main()
