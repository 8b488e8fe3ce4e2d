"""The S3 layout of a job and the few S3 calls the worker makes.

    jobs/<job>/input/...                 local inputs, uploaded once by submit
    jobs/<job>/input/chunks.json         the chunk plan, so `retry` can re-send
    jobs/<job>/map/<chunk>/part-<r>.json map output of one chunk, partition r
    jobs/<job>/result/part-<r>.json      reduce output of partition r

Keys are deterministic: a chunk or partition processed twice overwrites its
own output with the same bytes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from worker.names import INPUT_TAG_VALUE, MAP_OUTPUT_TAG_KEY, MAP_OUTPUT_TAG_VALUE


class MissingObject(LookupError):
    """An input or intermediate object that is not (or no longer) there."""


class AccessDenied(PermissionError):
    """An input this worker may not read: its bucket is not one the stack
    grants (context inputBuckets). Asking again will not change that."""


def result_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/result/"


def input_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/input/"


def plan_key(job_id: str) -> str:
    return f"jobs/{job_id}/input/chunks.json"


def map_key(job_id: str, chunk: int, partition: int) -> str:
    return f"jobs/{job_id}/map/{chunk:06d}/part-{partition:04d}.json"


def result_key(job_id: str, partition: int) -> str:
    return f"{result_prefix(job_id)}part-{partition:04d}.json"


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
    s3: Any, bucket: str, job_id: str, chunk: int, partition: int, value: Any
) -> None:
    put_json(s3, bucket, map_key(job_id, chunk, partition), value, tagging=MAP_OUTPUT_TAGGING)


def get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(get_object(s3, bucket, key))
