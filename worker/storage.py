"""The S3 layout of a job and the few S3 calls the worker makes.

    jobs/<job>/input/...                  local inputs, uploaded once by submit
    jobs/<job>/input/chunks.json          the chunk plan, so `retry` can re-send
    jobs/<job>/map/<chunk>/part-<r>.jsonl map output of one chunk, partition r
    jobs/<job>/result/part-<r>.jsonl      reduce output of partition r

A job of several steps keeps steps after the first under
`jobs/<job>/step-<k>/` (its chunk plan, map outputs and results, k from 1);
the last step's results are the job's result. Map outputs and results are
sorted runs of records (worker.records). Keys are deterministic: a chunk or
partition processed twice overwrites its own output with the same bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlencode

from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from worker.names import INPUT_TAG_VALUE, MAP_OUTPUT_TAG_KEY, MAP_OUTPUT_TAG_VALUE

log = logging.getLogger(__name__)

# A stream of an object that breaks off is opened again where it stopped,
# this many times: a merge may leave a stream unread for a while.
STREAM_REOPENS = 3


class MissingObject(LookupError):
    """An input or intermediate object that is not (or no longer) there."""


class AccessDenied(PermissionError):
    """An input this worker may not read: its bucket is not one the stack
    grants (context inputBuckets). Asking again will not change that."""


def _step_dir(job_id: str, step: int) -> str:
    return f"jobs/{job_id}/" if step == 0 else f"jobs/{job_id}/step-{step}/"


def result_prefix(job_id: str, step: int = 0) -> str:
    return f"{_step_dir(job_id, step)}result/"


def input_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/input/"


def plan_key(job_id: str, step: int = 0) -> str:
    if step == 0:
        return f"jobs/{job_id}/input/chunks.json"
    return f"{_step_dir(job_id, step)}chunks.json"


def map_key(job_id: str, chunk: int, partition: int, step: int = 0) -> str:
    return f"{_step_dir(job_id, step)}map/{chunk:06d}/part-{partition:04d}.jsonl"


def result_key(job_id: str, partition: int, step: int = 0) -> str:
    return f"{result_prefix(job_id, step)}part-{partition:04d}.jsonl"


def get_range(s3: Any, bucket: str, key: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of an object; b"" for an empty range."""
    if end <= start:
        return b""
    try:
        resp = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket", "InvalidRange"):
            raise MissingObject(f"s3://{bucket}/{key} bytes {start}-{end - 1}: {code}") from e
        if code in ("AccessDenied", "403"):
            raise AccessDenied(
                f"s3://{bucket}/{key}: this stack's map workers may not read bucket "
                f"{bucket!r}; add it to the inputBuckets context (cdk deploy -c "
                "inputBuckets=...) and deploy again"
            ) from e
        raise
    data: bytes = resp["Body"].read()
    return data


def _missing(e: ClientError, where: str) -> MissingObject | None:
    code = e.response.get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NoSuchBucket", "InvalidRange"):
        return MissingObject(f"{where}: {code}")
    return None


def stream_blocks(s3: Any, bucket: str, key: str, block_bytes: int) -> Iterator[bytes]:
    """An object's bytes a block at a time, from one GET. A stream that
    breaks off (a merge can leave one unread while it reads the others) is
    opened again at the byte where it stopped."""
    offset, reopens = 0, 0
    while True:
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            body = s3.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if offset and code == "InvalidRange":
                return  # the break came just at the end
            missing = _missing(e, f"s3://{bucket}/{key}")
            if missing is not None:
                raise missing from e
            raise
        try:
            while block := body.read(block_bytes):
                offset += len(block)
                yield block
            return
        except (ReadTimeoutError, IncompleteReadError, ResponseStreamingError) as e:
            reopens += 1
            if reopens > STREAM_REOPENS:
                raise
            log.info("s3://%s/%s: stream broke at byte %d (%s); reading on", bucket, key, offset, e)
        finally:
            body.close()


def put_stream(
    s3: Any, bucket: str, key: str, body: IO[bytes], *, tagging: str | None = None
) -> None:
    """Upload a file object from its current position."""
    extra = {"Tagging": tagging} if tagging else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson", **extra)


def put_bytes(
    s3: Any,
    bucket: str,
    key: str,
    body: bytes,
    *,
    tagging: str | None = None,
    content_type: str = "application/x-ndjson",
) -> None:
    extra = {"Tagging": tagging} if tagging else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)


def get_object(s3: Any, bucket: str, key: str) -> bytes:
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise MissingObject(f"s3://{bucket}/{key}: {code}") from e
        raise
    data: bytes = resp["Body"].read()
    return data


def put_json(s3: Any, bucket: str, key: str, value: Any, *, tagging: str | None = None) -> None:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    extra = {"Tagging": tagging} if tagging else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **extra)


# The bucket's lifecycle rule expires objects with this tag: map outputs are
# intermediate, needed only until the job's reduce has read them.
MAP_OUTPUT_TAGGING = urlencode({MAP_OUTPUT_TAG_KEY: MAP_OUTPUT_TAG_VALUE})


# The lifecycle rule for uploaded inputs and chunk plans expires objects
# with this tag.
INPUT_TAGGING = urlencode({MAP_OUTPUT_TAG_KEY: INPUT_TAG_VALUE})


def put_map_output(
    s3: Any, bucket: str, job_id: str, chunk: int, partition: int, run: bytes, step: int = 0
) -> None:
    put_bytes(s3, bucket, map_key(job_id, chunk, partition, step), run, tagging=MAP_OUTPUT_TAGGING)


def get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(get_object(s3, bucket, key))


def result_sizes(s3: Any, bucket: str, job_id: str, step: int) -> dict[int, int]:
    """The byte size of each partition result of a job's step, by partition."""
    prefix = result_prefix(job_id, step)
    sizes: dict[int, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix) :]
            if name.startswith("part-") and name.endswith(".jsonl"):
                sizes[int(name[len("part-") : -len(".jsonl")])] = int(obj["Size"])
    return sizes
