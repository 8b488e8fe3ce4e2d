"""Real worker processes against the embedded AWS, started and stopped by
the tests themselves, with short visibility timeouts so that redeliveries
come within seconds. Every wait is bounded, and generous: a loaded machine
is slow, never wrong."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from moto.core.base_backend import BackendDict

import tests.reliability.jobs  # noqa: F401  (registers the test jobs here too)
from submit.clients import Clients
from submit.embedded import EmbeddedAWS, local_client, local_env, provision
from submit.resources import LocalState, Resources, state_path
from submit.submission import submit_job
from submit.tracking import JobStatus, wait_for
from worker import names
from worker.ledger.admin import Admin
from worker.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JOB_MODULES = "tests.reliability.jobs"
WORDS = ["alpha", "beta", "gamma", "delta", "straße", "λόγος", "東京", "x_1", "42", "don't"]


def write_corpus(root: Path, *, files: int, lines: int, seed: int) -> dict[str, bytes]:
    """Text files of random words; returns name -> bytes as submit names them."""
    rng = random.Random(seed)
    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        rows = [" ".join(rng.choices(WORDS, k=rng.randint(0, 9))) for _ in range(lines)]
        path = root / f"part-{f:03d}.txt"
        path.write_bytes(("\n".join(rows) + "\n").encode())
        out[str(path)] = path.read_bytes()
    return out


def until(check: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    """Poll until check() is truthy; its value. Fails the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


@dataclass
class Stack:
    """A provisioned embedded AWS and the worker processes a test started."""

    endpoint: str
    resources: Resources
    clients: Clients
    settings: Settings
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0

    @property
    def ledger(self) -> Admin:
        return self.clients.ledger(self.resources)

    def worker(
        self,
        role: str,
        *,
        burst: bool = False,
        stop_timeout_s: float = 30,
        name: str = "",
        env: dict[str, str] | None = None,
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start `python -m worker ROLE`, with `env` added to its environment;
        returns the process and its log."""
        self.started += 1
        worker_id = name or f"test-{role}-{self.started}"
        log = self.log_dir / f"{worker_id}.log"
        env = {
            **os.environ,
            **local_env(self.endpoint),
            **self.resources.worker_env(),
            "DROVER_RECEIVE_WAIT_S": "1",
            "DROVER_STOP_TIMEOUT_S": str(stop_timeout_s),
            "DROVER_JOB_MODULES": JOB_MODULES,
            # As the local fleet's: jobs submitted here name local files.
            names.ENV_READ_LOCAL_FILES: "1",
            "PYTHONPATH": str(PROJECT_ROOT),
            **(env or {}),
        }
        args = [sys.executable, "-m", "worker", role, "--id", worker_id]
        if burst:
            args.append("--burst")
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.procs.append(proc)
        return proc, log

    def depth(self, url: str) -> tuple[int, int]:
        attrs = self.clients.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def submit(self, inputs: list[str], job: str, params: dict[str, Any], **kw: Any) -> str:
        kw.setdefault("partitions", 2)
        return submit_job(
            self.clients, self.resources, inputs=inputs, job=job, params=params, **kw
        ).job_id

    def wait(self, job_id: str, *, timeout_s: float = 120) -> JobStatus:
        status = wait_for(self.clients, self.resources, job_id, timeout_s=timeout_s, max_poll_s=0.3)
        if not status.terminal:
            pytest.fail(f"job {job_id} still {status.state} after {timeout_s:.0f}s")
        return status

    def serve_cli(self) -> None:
        """Make `python -m submit` commands in this process use this stack."""
        LocalState(
            pid=os.getpid(),
            port=int(self.endpoint.rsplit(":", 1)[1]),
            endpoint_url=self.endpoint,
            max_workers=0,
            resources=self.resources,
        ).write(state_path())

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(30)


def log_lines(*logs: Path) -> list[str]:
    return [line for log in logs for line in log.read_text(errors="replace").splitlines()]


@pytest.fixture(autouse=True)
def _empty_aws() -> Iterator[None]:
    """moto keeps one state per process, shared by every moto server in it
    (this module's, a LocalDrover's, another test file's): each test starts
    from an empty one and leaves an empty one."""
    BackendDict.reset()
    yield
    BackendDict.reset()


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedAWS]:
    aws = EmbeddedAWS()
    aws.start()
    yield aws
    aws.stop()


@pytest.fixture
def make_stack(embedded: EmbeddedAWS, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """make_stack(visibility_timeout_s=..., max_receive_count=...): a fresh
    bucket, table and queues on the module's embedded AWS."""
    made: list[Stack] = []

    def make(**settings: Any) -> Stack:
        endpoint = embedded.endpoint_url
        chosen = Settings(**{"visibility_timeout_s": 6, "max_receive_count": 3, **settings})
        clients = Clients(
            s3=local_client("s3", endpoint),
            sqs=local_client("sqs", endpoint),
            dynamodb=local_client("dynamodb", endpoint),
        )
        resources = provision(
            s3=clients.s3,
            sqs=clients.sqs,
            dynamodb=clients.dynamodb,
            settings=chosen,
            endpoint_url=endpoint,
        )
        log_dir = tmp_path / "logs"
        log_dir.mkdir(exist_ok=True)
        stack = Stack(endpoint, resources, clients, chosen, log_dir)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop_all()
