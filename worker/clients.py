"""boto3 clients with botocore's standard retry mode. Endpoints come from the
standard chain, so AWS_ENDPOINT_URL points every client at a local AWS."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from worker.records import MERGE_FAN_IN

RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60
)
# A reducer holds a stream open per map output it merges: a connection each,
# beyond botocore's default pool of 10.
S3_CONFIG = RETRIES.merge(Config(max_pool_connections=MERGE_FAN_IN + 4))


def client(service: str, session: boto3.session.Session | None = None) -> Any:
    config = S3_CONFIG if service == "s3" else RETRIES
    return (session or boto3.session.Session()).client(service, config=config)  # type: ignore[call-overload]
