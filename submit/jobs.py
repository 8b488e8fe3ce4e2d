"""Submitting, following and fetching jobs: the work behind the CLI.

Every function takes its clients and resources as arguments; the CLI only
parses arguments and prints.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from submit.resources import Resources
from submit.splitting import InputError, InputFile, Placed, discover, plan_chunks
from worker import storage
from worker.accounting import CHUNK_FAILED, SUCCEEDED, TERMINAL_STATES, Accounting
from worker.ecs import Wake
from worker.jobs import get_job
from worker.loop import Role
from worker.messages import MapTask, to_json
from worker.queues import send_batches
from worker.triggers import trigger_reduce

# Local files are concatenated into pack objects, so a tree of small files
# costs a few uploads, not one per file. A pack holds about this many chunks:
# few requests per chunk to upload, and a ranged GET never has to touch a
# huge object (moto's server reads a whole object to serve a range of it).
CHUNKS_PER_PACK = 4
MIN_PACK_BYTES = 8 << 20
MAX_PACK_BYTES = 1 << 30
UPLOAD = TransferConfig(multipart_threshold=128 << 20, multipart_chunksize=64 << 20)


def pack_bytes_for(chunk_size_bytes: int) -> int:
    return max(MIN_PACK_BYTES, min(MAX_PACK_BYTES, CHUNKS_PER_PACK * chunk_size_bytes))


class JobNotFound(LookupError):
    pass


@dataclass
class Clients:
    s3: Any
    sqs: Any
    dynamodb: Any
    ecs: Any | None = None

    def accounting(self, resources: Resources) -> Accounting:
        return Accounting(dynamodb=self.dynamodb, table=resources.table)


@dataclass(frozen=True)
class Submitted:
    job_id: str
    chunks: int
    inputs: int
    input_bytes: int
    seconds: float


def new_job_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class _Concat(io.RawIOBase):
    """The bytes of several files, one after another, as one stream."""

    def __init__(self, files: Sequence[InputFile], progress: Callable[[int], None] | None) -> None:
        self.files = list(files)
        self.current: Any = None
        self.left = 0
        self.progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self.current is None:
                if not self.files:
                    return 0
                f = self.files.pop(0)
                assert f.path is not None
                self.current, self.left = f.path.open("rb"), f.size
            n = self.current.readinto(memoryview(buffer)[: min(len(buffer), self.left)])
            if n == 0 and self.left > 0:
                raise InputError(f"{self.current.name}: file shrank while it was uploaded")
            self.left -= n
            if self.left == 0:
                self.current.close()
                self.current = None
            if n:
                if self.progress:
                    self.progress(n)
                return n


def place_inputs(
    job_id: str, files: Sequence[InputFile], pack_bytes: int = MAX_PACK_BYTES
) -> tuple[list[Placed], dict[str, list[InputFile]]]:
    """Where every input's bytes will be: S3 inputs stay where they are;
    local files go into pack objects, side by side. Returns the placements
    and, for each pack key, the local files to upload into it, in order."""
    placed: list[Placed] = []
    packs: dict[str, list[InputFile]] = {}
    key, filled = "", 0
    for index, f in enumerate(files):
        if f.path is None:
            assert f.key is not None
            placed.append(Placed(file=f, index=index, key=f.key, base=0, bucket=f.bucket))
            continue
        if f.size == 0:
            continue
        if not key or filled + f.size > pack_bytes:
            key, filled = f"{storage.input_prefix(job_id)}pack-{len(packs):04d}", 0
            packs[key] = []
        placed.append(Placed(file=f, index=index, key=key, base=filled))
        packs[key].append(f)
        filled += f.size
    return placed, packs


def upload_packs(
    s3: Any,
    bucket: str,
    packs: dict[str, list[InputFile]],
    progress: Callable[[int], None] | None = None,
) -> None:
    for key, files in packs.items():
        stream = io.BufferedReader(_Concat(files, progress), buffer_size=8 << 20)
        s3.upload_fileobj(stream, bucket, key, Config=UPLOAD)


def submit_job(
    clients: Clients,
    resources: Resources,
    *,
    inputs: Sequence[str],
    job: str,
    params: dict[str, Any],
    chunk_size_bytes: int,
    partitions: int,
    max_failures: int = 0,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    wake: Wake | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Submitted:
    """Validate, upload, plan and enqueue a job; returns once it is queued.

    Everything that can be checked up front is checked before anything is
    uploaded or enqueued: the job and its parameters, the sizes, the inputs.
    Once its messages are queued, `wake(fleet, need)` asks for the workers
    (a map worker per chunk, or a reducer per partition for a job of no
    chunks) rather than wait minutes for the queue alarm. Not before: a
    worker started during a long upload would idle, billed, until the
    messages came, and one started for nothing stays until the idle window
    ends.
    """
    started = time.monotonic()
    spec = get_job(job)
    checked = spec.check_params(params)
    if chunk_size_bytes <= 0:
        raise ValueError("chunk size must be positive")
    if not 1 <= partitions <= 1000:
        raise ValueError(f"partitions must be from 1 to 1000, got {partitions}")
    if max_failures < 0:
        raise ValueError("max failures must be 0 or more")
    if not inputs:
        raise InputError("no input given")
    files = discover(inputs, s3=clients.s3, include=include, exclude=exclude)
    job_id = new_job_id()
    local_bytes = sum(f.size for f in files if f.path is not None)
    sent = 0

    def uploaded(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress("upload", sent, local_bytes)

    placed, packs = place_inputs(job_id, files, pack_bytes_for(chunk_size_bytes))
    chunks = plan_chunks(placed, chunk_size_bytes)
    upload_packs(clients.s3, resources.bucket, packs, uploaded)
    tasks = [
        MapTask(
            job_id=job_id,
            chunk=n,
            job=job,
            params=checked,
            partitions=partitions,
            bucket=resources.bucket,
            pieces=tuple(pieces),
        )
        for n, pieces in enumerate(chunks)
    ]
    # The plan is kept so that `retry` can send any chunk again.
    storage.put_json(
        clients.s3,
        resources.bucket,
        storage.plan_key(job_id),
        {"chunks": [json.loads(to_json(t)) for t in tasks]},
    )
    accounting = clients.accounting(resources)
    accounting.create_job(
        job_id=job_id,
        job=job,
        params=checked,
        partitions=partitions,
        expected=len(tasks),
        bucket=resources.bucket,
        inputs=len(files),
        input_bytes=sum(f.size for f in files),
        max_failures=max_failures,
    )
    if tasks:
        send_batches(clients.sqs, resources.map_queue_url, (to_json(t) for t in tasks))
        if wake is not None:
            wake(Role.MAP, len(tasks))
    else:
        trigger_reduce(
            clients.sqs,
            resources.reduce_queue_url,
            job_id=job_id,
            job=job,
            params=checked,
            partitions=partitions,
            chunks=0,
            bucket=resources.bucket,
            wake=None if wake is None else (lambda n: wake(Role.REDUCE, n)),
        )
    return Submitted(
        job_id=job_id,
        chunks=len(tasks),
        inputs=len(files),
        input_bytes=sum(f.size for f in files),
        seconds=time.monotonic() - started,
    )


@dataclass
class JobStatus:
    job_id: str
    job: str
    state: str
    done: int
    expected: int
    failed: int
    reduced: int
    partitions: int
    input_bytes: int
    created_at: str
    finished_at: str | None
    elapsed_s: float
    params: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None
    failed_chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def throughput_mb_s(self) -> float:
        """Input mapped per second so far (chunks are of about equal size)."""
        if self.elapsed_s <= 0:
            return 0.0
        share = self.done / self.expected if self.expected else 1.0
        return self.input_bytes * share / 1e6 / self.elapsed_s

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["throughput_mb_s"] = round(self.throughput_mb_s, 3)
        return out


def _elapsed(record: dict[str, Any]) -> float:
    start = datetime.fromisoformat(record["created_at"])
    end_text = record.get("finished_at")
    end = datetime.fromisoformat(end_text) if end_text else datetime.now(UTC)
    return max(0.0, (end - start).total_seconds())


def job_status(
    clients: Clients, resources: Resources, job_id: str, *, details: bool = True
) -> JobStatus:
    accounting = clients.accounting(resources)
    record = accounting.get_job(job_id)
    if record is None:
        raise JobNotFound(f"no job {job_id!r} (see `python -m submit jobs`)")
    failed_chunks: list[dict[str, Any]] = []
    if details:
        failed_chunks = [
            {
                "chunk": int(item["sk"].split("#", 1)[1]),
                "attempts": item.get("attempts"),
                "last_error": item.get("last_error"),
                "worker": item.get("worker"),
            }
            for item in accounting.chunk_items(job_id, CHUNK_FAILED)
        ]
    return JobStatus(
        job_id=job_id,
        job=record["job"],
        state=record["state"],
        done=record["done"],
        expected=record["expected"],
        failed=len(failed_chunks),
        reduced=record.get("reduced", 0),
        partitions=record["partitions"],
        input_bytes=record.get("input_bytes", 0),
        created_at=record["created_at"],
        finished_at=record.get("finished_at"),
        elapsed_s=_elapsed(record),
        params=record.get("params", {}),
        summary=record.get("summary"),
        error=record.get("error"),
        failed_chunks=failed_chunks,
    )


def wait_for(
    clients: Clients,
    resources: Resources,
    job_id: str,
    *,
    on_update: Callable[[JobStatus], None] | None = None,
    max_poll_s: float = 2.0,
    timeout_s: float | None = None,
) -> JobStatus:
    """Poll until the job ends (or the timeout passes); returns its status.

    Polls quickly at first, so a short job is seen to end promptly, then
    every `max_poll_s`: each poll is a billed read, and a long job needs no
    more than a progress bar's worth of them."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    poll_s = 0.25
    while True:
        status = job_status(clients, resources, job_id, details=False)
        if on_update:
            on_update(status)
        if status.terminal:
            return job_status(clients, resources, job_id)
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(poll_s)
        poll_s = min(max_poll_s, poll_s * 1.5)


def fetch_result(clients: Clients, resources: Resources, job_id: str) -> Any:
    """The job's whole result, merged from its partitions."""
    status = job_status(clients, resources, job_id, details=False)
    if status.state != SUCCEEDED:
        raise JobNotFound(f"job {job_id} is {status.state}; it has no result yet")
    spec = get_job(status.job)
    parts: Iterator[Any] = (
        storage.get_json(clients.s3, resources.bucket, storage.result_key(job_id, r))
        for r in range(status.partitions)
    )
    return spec.merge_results(parts, status.params)


def write_result(result: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    tmp.replace(path)


def list_jobs(clients: Clients, resources: Resources, limit: int = 20) -> list[dict[str, Any]]:
    out = []
    for record in clients.accounting(resources).list_jobs(limit):
        out.append(
            {
                "job_id": record["job_id"],
                "job": record["job"],
                "state": record["state"],
                "done": record["done"],
                "expected": record["expected"],
                "created_at": record["created_at"],
                "elapsed_s": round(_elapsed(record), 1),
            }
        )
    return out
