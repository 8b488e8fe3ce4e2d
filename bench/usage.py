"""What a process asked of AWS and of its machine, for the benchmark.

The benchmark injects this into every process of the run it measures (the
CLI, the embedded AWS, each worker) through `bench/inject/sitecustomize.py`
and DROVER_REQUEST_LOG, a directory: every botocore client the process makes
counts its HTTP requests (retries included, as AWS bills them) per service
and operation, through botocore's `before-send` event, and the items of its
DynamoDB transactions (each costs two write units), and per operation the
wall-clock span from the first request's start to the last one's answer
(how long the CLI took to queue a job's messages); at exit the process
writes them, with its CPU seconds and peak resident memory, to
`<directory>/<pid>.json`. Production code knows nothing of it.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from worker.names import LOCAL_FLEET_THREAD

ENV_REQUEST_LOG = "DROVER_REQUEST_LOG"
# Requests of the local fleet's queue-depth polling, which stands in for
# CloudWatch's alarms, are counted under this prefix: no deployed Drover makes
# them.
LOCAL_FLEET_PREFIX = "local-fleet:"

_requests: Counter[str] = Counter()
_transaction_items: Counter[str] = Counter()
# Operation -> [first request's start, last answer], in epoch seconds.
_spans: dict[str, list[float]] = {}
# s3transfer sends from several threads.
_lock = threading.Lock()
_registered = False


def _key(event_name: str) -> str:
    # <event>.<service>.<Operation>
    _, service, operation = event_name.split(".", 2)
    key = f"{service}.{operation}"
    if threading.current_thread().name == LOCAL_FLEET_THREAD:
        return LOCAL_FLEET_PREFIX + key
    return key


def _count(event_name: str, **kwargs: Any) -> None:
    key = _key(event_name)
    now = time.time()
    with _lock:
        _requests[key] += 1
        _spans.setdefault(key, [now, now])


def _answered(event_name: str, **kwargs: Any) -> None:
    now = time.time()
    with _lock:
        span = _spans.get(_key(event_name))
        if span is not None:
            span[1] = max(span[1], now)


def _count_items(event_name: str, params: dict[str, Any], **kwargs: Any) -> None:
    _, service, operation = event_name.split(".", 2)
    with _lock:
        _transaction_items[f"{service}.{operation}"] += len(params.get("TransactItems", ()))


def watch(client: Any) -> Any:
    """Count the client's requests."""
    client.meta.events.register("before-send", _count)
    client.meta.events.register("after-call", _answered)
    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", _count_items)
    return client


def install() -> None:
    """Count the requests of every botocore client this process makes from
    now on, and write the report at exit; a no-op without
    DROVER_REQUEST_LOG, or when installed already."""
    global _registered
    directory = os.environ.get(ENV_REQUEST_LOG)
    if not directory or _registered:
        return
    _registered = True
    atexit.register(write_report, Path(directory))
    import botocore.session

    create_client = botocore.session.Session.create_client

    def counting_create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        return watch(create_client(self, *args, **kwargs))

    botocore.session.Session.create_client = counting_create_client  # type: ignore[method-assign]


def peak_rss_kib() -> int:
    """This process's resident-memory high-water mark. Not ru_maxrss: Linux
    carries the parent's into a child across fork and exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def write_report(directory: Path) -> Path:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with _lock:
        requests = dict(_requests)
        items = dict(_transaction_items)
        spans = {k: list(v) for k, v in _spans.items()}
    report = {
        "pid": os.getpid(),
        "argv": sys.argv,
        "requests": requests,
        "transaction_items": items,
        "spans": spans,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": peak_rss_kib(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{os.getpid()}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path
