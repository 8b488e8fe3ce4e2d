"""The embedded AWS: moto's server on loopback, with Drover's bucket, table
and queues created from the same settings as the deployed stack."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3

from submit.resources import Resources
from worker import names
from worker import settings as cfg
from worker.clients import RETRIES

log = logging.getLogger(__name__)

REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep a developer's real ones out.
CREDENTIALS = {"aws_access_key_id": "drover-local", "aws_secret_access_key": "drover-local"}
LOCAL_BUCKET = "drover-local"
LOCAL_TABLE = "drover-jobs"
LOCAL_QUEUES = ("drover-map", "drover-reduce")


def local_env(endpoint_url: str) -> dict[str, str]:
    """Environment for a process that talks to the embedded AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def local_session() -> boto3.session.Session:
    return boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )


def local_client(service: str, endpoint_url: str) -> Any:
    return local_session().client(service, endpoint_url=endpoint_url, config=RETRIES)  # type: ignore[call-overload]


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

    def __post_init__(self) -> None:
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        if not self.port:
            self.port = free_port()
        elif port_in_use(self.port):
            raise OSError(f"port {self.port} on 127.0.0.1 is already in use")
        # One access-log line per request would bury the user's output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # What moto's ThreadedMotoServer does, with DynamoDB serialized.
        app = _OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self.server = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="embedded-aws", daemon=True
        )
        self.thread.start()
        # moto keeps its state per process, not per server: start empty even
        # where an earlier embedded AWS of this process left tables behind.
        reset = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10) as resp:
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
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
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
