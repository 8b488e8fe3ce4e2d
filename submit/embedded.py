"""The embedded AWS: moto's server on loopback, with Drover's bucket, table
and queues created from the same settings as the deployed stack.

`EmbeddedAWS` runs moto's server in a thread of the calling process.
`serve` runs it as a process of its own, `python -m submit.embedded`,
which is what local mode uses (started and stopped by
submit.embedded_process): the server's request handling (every SQS poll,
DynamoDB write and S3 object of a job) then has its own interpreter and
lock, not the submitting one's, whose CLI meanwhile finds the inputs, plans
the chunks and follows the job; and moto is patched there for jobs of
thousands of chunks (submit.moto_at_scale). Its state lives in memory only,
so it exits at once, with no graceful drain to wait for.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3

from submit import moto_at_scale
from submit.resources import Resources
from worker import names
from worker import settings as cfg
from worker.clients import RETRIES
from worker.exiting import exit_now

log = logging.getLogger(__name__)

REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep a developer's real ones out.
CREDENTIALS = {"aws_access_key_id": "drover-local", "aws_secret_access_key": "drover-local"}
LOCAL_BUCKET = "drover-local"
LOCAL_TABLE = "drover-jobs"
LOCAL_QUEUES = ("drover-map", "drover-reduce")
# moto's default account, in its queue URLs and ARNs.
ACCOUNT_ID = "123456789012"


def local_env(endpoint_url: str) -> dict[str, str]:
    """Environment for a process that talks to the embedded AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def local_session() -> boto3.session.Session:
    """One session per process: its clients share the service data it has
    loaded, a few tens of milliseconds a client."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session(
                region_name=REGION,
                aws_access_key_id=CREDENTIALS["aws_access_key_id"],
                aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
            )
        return _session


def local_client(service: str, endpoint_url: str) -> Any:
    session = local_session()
    with _session_lock:  # a session is not safe to share across threads
        return session.client(service, endpoint_url=endpoint_url, config=RETRIES)  # type: ignore[call-overload]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class _OneDynamoDBRequestAtATime:
    """WSGI middleware: moto's DynamoDB is not safe across server threads.

    It evaluates a condition and applies the write in separate steps, and
    applies a transaction by copying the whole table and restoring the copy
    when a condition fails, which also undoes other threads' writes made in
    between. Several worker processes then lose counts or count a chunk
    twice. DynamoDB requests never block in moto, so serializing them costs
    little; SQS requests are left concurrent, as long polls wait inside them.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


@dataclass
class EmbeddedAWS:
    """moto's threaded server on 127.0.0.1; `start` returns its endpoint."""

    port: int = 0
    # A socket already bound and listening, to serve on instead of binding
    # `port` (EmbeddedProcess hands its process one).
    fd: int | None = None

    def __post_init__(self) -> None:
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, reset: bool = True) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        if self.fd is None and self.port and port_in_use(self.port):
            raise OSError(f"port {self.port} on 127.0.0.1 is already in use")
        # One access-log line per request would bury the user's output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # What moto's ThreadedMotoServer does, with DynamoDB serialized.
        app = _OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self.server = make_server(
            "127.0.0.1",
            self.port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=self.fd,
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="embedded-aws", daemon=True
        )
        self.thread.start()
        self.port = self.server.port
        if reset:
            # moto keeps its state per process, not per server: start empty
            # even where an earlier embedded AWS of this process left tables.
            request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
            with urllib.request.urlopen(request, timeout=10) as resp:
                resp.read()
        return self.endpoint_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.thread is not None:
            self.thread.join()
            self.thread = None


def serve(port: int, fd: int | None = None) -> int:
    """The embedded AWS's process: serve until standard input closes, on the
    listening socket `fd` if given, else on `port`."""
    # A Ctrl-C reaches the whole process group: the process that started
    # this one decides when it stops, after its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # This process is the embedded AWS and nothing else: moto's walks over
    # every message and item are cut down here, for jobs of thousands of
    # chunks, and nowhere else.
    moto_at_scale.apply()
    aws = EmbeddedAWS(port=port, fd=fd)
    aws.start(reset=False)
    sys.stdout.write(json.dumps({"port": aws.port}) + "\n")
    sys.stdout.flush()
    # EOF when the process that started this one closes the pipe or dies.
    # Then nothing is saved or drained: moto's state is in memory, every
    # client that could still ask is being stopped too, and the server's
    # threads are daemons that end with the process.
    sys.stdin.buffer.read()
    # Nor is anything torn down (worker.exiting).
    exit_now(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m submit.embedded")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--fd", type=int, help="serve on this listening socket instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    return serve(args.port, args.fd)


def local_resources(endpoint_url: str, settings: cfg.Settings) -> Resources:
    """What `provision` creates on the embedded AWS at `endpoint_url`, known
    before it does: the names are fixed, and moto's queue URLs are the
    endpoint as the request's Host names it (without HTTP's own port 80),
    the account and the name."""
    host = endpoint_url.removesuffix(":80") if endpoint_url.startswith("http://") else endpoint_url
    return _resources(
        {
            queue: f"{host}/{ACCOUNT_ID}/{queue}"
            for name in LOCAL_QUEUES
            for queue in (name, f"{name}-dlq")
        },
        endpoint_url,
        settings,
    )


def _resources(urls: dict[str, str], endpoint_url: str | None, settings: cfg.Settings) -> Resources:
    return Resources(
        bucket=LOCAL_BUCKET,
        table=LOCAL_TABLE,
        map_queue_url=urls["drover-map"],
        map_dlq_url=urls["drover-map-dlq"],
        reduce_queue_url=urls["drover-reduce"],
        reduce_dlq_url=urls["drover-reduce-dlq"],
        endpoint_url=endpoint_url,
        task_cpu=settings.worker_cpu,
        task_memory_mib=settings.worker_memory_mib,
        local=True,
    )


def provision(
    *, s3: Any, sqs: Any, dynamodb: Any, settings: cfg.Settings, endpoint_url: str | None = None
) -> Resources:
    """Create the bucket, table and queues (each queue with its DLQ and
    redrive policy) as the stack does, on the embedded AWS."""
    ddb = dynamodb
    s3.create_bucket(Bucket=LOCAL_BUCKET)
    ddb.create_table(
        TableName=LOCAL_TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": names.TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": names.TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in (
                names.TABLE_PARTITION_KEY,
                names.TABLE_SORT_KEY,
                names.JOBS_BY_TIME_PARTITION_KEY,
                names.JOBS_BY_TIME_SORT_KEY,
            )
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": names.JOBS_BY_TIME_INDEX,
                "KeySchema": [
                    {"AttributeName": names.JOBS_BY_TIME_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": names.JOBS_BY_TIME_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    urls: dict[str, str] = {}
    for name in LOCAL_QUEUES:
        dlq = sqs.create_queue(
            QueueName=f"{name}-dlq",
            Attributes={"MessageRetentionPeriod": str(settings.dlq_retention_days * 86400)},
        )["QueueUrl"]
        # What the embedded AWS names it (as local_resources predicts its URL).
        dlq_arn = f"arn:aws:sqs:{sqs.meta.region_name}:{ACCOUNT_ID}:{name}-dlq"
        urls[f"{name}-dlq"] = dlq
        urls[name] = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(settings.visibility_timeout_s),
                "MessageRetentionPeriod": str(settings.queue_retention_days * 86400),
                "ReceiveMessageWaitTimeSeconds": str(settings.receive_wait_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
                ),
            },
        )["QueueUrl"]
    return _resources(urls, endpoint_url, settings)


if __name__ == "__main__":
    sys.exit(main())
