"""Submitting a job: check everything that can be checked, place the input,
plan the chunks, create the job in the ledger and queue its messages.

Everything that can be checked up front is checked before anything is
uploaded or queued: the job and its parameters, the sizes, the inputs.

Local inputs are placed one of two ways. For a deployed stack they are
uploaded once, packed side by side into a few objects. For the embedded
AWS, whose fleet runs on this machine, they are not uploaded at all: the
chunk messages name the files by absolute path and the local fleet's
workers read their byte ranges from disk (worker.phases), so no input byte
passes through the embedded AWS. S3 inputs are read where they are either
way.
"""

from __future__ import annotations

import io
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig

from submit.clients import Clients
from submit.enqueue import send_concurrently
from submit.errors import UsageError
from submit.resources import Resources
from submit.splitting import (
    InputError,
    InputFile,
    Placed,
    discover,
    parse_s3_uri,
    plan_chunks,
)
from worker import storage
from worker.ecs import Wake
from worker.jobs import get_job
from worker.ledger import Phase
from worker.messages import MapTask, to_json
from worker.triggers import trigger_reduce

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Local files are concatenated into pack objects, so a tree of small files
# costs a few uploads, not one per file. A pack holds about this many chunks:
# few requests per chunk to upload, and a ranged GET never has to touch a
# huge object (moto's server reads a whole object to serve a range of it).
CHUNKS_PER_PACK = 4
MIN_PACK_BYTES = 8 << 20
MAX_PACK_BYTES = 1 << 30
UPLOAD = TransferConfig(multipart_threshold=128 << 20, multipart_chunksize=64 << 20)
MAX_PARTITIONS = 1000


def pack_bytes_for(chunk_size_bytes: int) -> int:
    return max(MIN_PACK_BYTES, min(MAX_PACK_BYTES, CHUNKS_PER_PACK * chunk_size_bytes))


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
            n: int = self.current.readinto(memoryview(buffer)[: min(len(buffer), self.left)])
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
    job_id: str,
    files: Sequence[InputFile],
    pack_bytes: int = MAX_PACK_BYTES,
    *,
    in_place: bool = False,
) -> tuple[list[Placed], dict[str, list[InputFile]]]:
    """Where every input's bytes will be: S3 inputs stay where they are;
    local files stay where they are too when `in_place` (a fleet on this
    machine reads them), else they go into pack objects, side by side.
    Returns the placements and, for each pack key, the local files to upload
    into it, in order."""
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
        if in_place:
            # Absolute, as a worker started elsewhere must find it; links
            # are left as they are (abspath, far cheaper than resolve).
            path = os.path.abspath(f.path)
            placed.append(Placed(file=f, index=index, key="", base=0, path=path))
            continue
        if not key or filled + f.size > pack_bytes:
            key, filled = f"{storage.input_prefix(job_id)}pack-{len(packs):04d}", 0
            packs[key] = []
        placed.append(Placed(file=f, index=index, key=key, base=filled))
        packs[key].append(f)
        filled += f.size
    return placed, packs


def upload_packs(
    s3: S3Client,
    bucket: str,
    packs: dict[str, list[InputFile]],
    progress: Callable[[int], None] | None = None,
) -> None:
    for key, files in packs.items():
        stream = io.BufferedReader(_Concat(files, progress), buffer_size=8 << 20)
        s3.upload_fileobj(
            stream, bucket, key, Config=UPLOAD, ExtraArgs={"Tagging": storage.INPUT_TAGGING}
        )


def refuse_unreadable_inputs(inputs: Sequence[str], resources: Resources) -> None:
    """Refuse an s3:// input whose bucket the stack's map workers may not
    read (they would get AccessDenied), before anything is written. Local
    files are uploaded to the job bucket, which they may."""
    allowed = resources.input_buckets
    if allowed is None:
        return
    for spec in inputs:
        if not spec.startswith("s3://"):
            continue
        bucket, _ = parse_s3_uri(spec)
        if bucket in allowed:
            continue
        granted = ", ".join(allowed) if allowed else "none"
        raise UsageError(
            f"{spec}: this stack's map workers may not read bucket {bucket!r} (buckets they "
            f"may read inputs from: {granted}); grant it with `cdk deploy -c "
            f"inputBuckets={','.join((*allowed, bucket))}` (or add it to inputBuckets in "
            "cdk.json and deploy again), or pass local files"
        )


def check_request(
    *, job: str, params: dict[str, Any], chunk_size_bytes: int, partitions: int, max_failures: int
) -> dict[str, Any]:
    """The job's checked parameters; raises UsageError (or JobError) on
    anything wrong with the request itself."""
    checked = get_job(job).check_params(params)
    if chunk_size_bytes <= 0:
        raise UsageError("chunk size must be positive")
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise UsageError(f"partitions must be from 1 to {MAX_PARTITIONS}, got {partitions}")
    if max_failures < 0:
        raise UsageError("max failures must be 0 or more")
    return checked


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
    files: Sequence[InputFile] | None = None,
) -> Submitted:
    """Validate, upload, plan and enqueue a job; returns once it is queued.

    Local inputs are read in place when the target is the embedded AWS
    (`resources.local`), uploaded otherwise (see the module's docstring).
    `files`, if given, are the inputs as `discover` already found them.
    `progress(phase, done, total)` follows the upload ("upload", in bytes)
    and the queueing ("queue", in messages, several batches at once: see
    submit.enqueue).

    Once its messages are queued, `wake(fleet, need)` asks for the workers (a
    map worker per chunk, or a reducer per partition for a job of no chunks)
    rather than wait minutes for the queue alarm. Not before: a worker started
    during a long upload would idle, billed, until the messages came."""
    started = time.monotonic()
    checked = check_request(
        job=job,
        params=params,
        chunk_size_bytes=chunk_size_bytes,
        partitions=partitions,
        max_failures=max_failures,
    )
    if not inputs:
        raise InputError("no input given")
    refuse_unreadable_inputs(inputs, resources)
    if files is None:
        files = discover(inputs, s3=clients.s3, include=include, exclude=exclude)
    job_id = new_job_id()
    local_bytes = sum(f.size for f in files if f.path is not None)
    sent = 0

    def uploaded(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress("upload", sent, local_bytes)

    placed, packs = place_inputs(
        job_id, files, pack_bytes_for(chunk_size_bytes), in_place=resources.local
    )
    chunks = plan_chunks(placed, chunk_size_bytes)
    upload_packs(clients.s3, resources.bucket, packs, uploaded)
    tasks = [
        MapTask(
            job_id=job_id,
            chunk=n,
            job=job,
            params=checked,
            partitions=get_job(job).step_partitions(partitions)[0],
            bucket=resources.bucket,
            pieces=tuple(pieces),
        )
        for n, pieces in enumerate(chunks)
    ]
    bodies = [to_json(t) for t in tasks]
    # The plan is kept so that `retry` can send any chunk again: the very
    # messages, as one JSON document {"chunks": [...]}.
    storage.put_bytes(
        clients.s3,
        resources.bucket,
        storage.plan_key(job_id),
        ('{"chunks":[' + ",".join(bodies) + "]}").encode(),
        tagging=storage.INPUT_TAGGING,
        content_type="application/json",
    )
    ledger = clients.ledger(resources)
    step_partitions = get_job(job).step_partitions(partitions)
    ledger.create_job(
        job_id=job_id,
        job=job,
        params=checked,
        partitions=step_partitions[0],
        expected=len(tasks),
        bucket=resources.bucket,
        inputs=len(files),
        input_bytes=sum(f.size for f in files),
        max_failures=max_failures,
        step_partitions=step_partitions,
        chunk_size_bytes=chunk_size_bytes,
    )
    if tasks:

        def queued(sent: int, total: int) -> None:
            if progress:
                progress("queue", sent, total)

        send_concurrently(clients.sqs, resources.map_queue_url, bodies, progress=queued)
        if wake is not None:
            wake(Phase.MAP, len(tasks))
    else:
        trigger_reduce(
            clients.sqs,
            resources.reduce_queue_url,
            ledger.require(job_id),
            wake=None if wake is None else (lambda n: wake(Phase.REDUCE, n)),
        )
    return Submitted(
        job_id=job_id,
        chunks=len(tasks),
        inputs=len(files),
        input_bytes=sum(f.size for f in files),
        seconds=time.monotonic() - started,
    )
