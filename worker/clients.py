"""boto3 clients with botocore's standard retry mode. Endpoints come from the
standard chain, so AWS_ENDPOINT_URL points every client at a local AWS."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60
)


def client(service: str, session: boto3.session.Session | None = None) -> Any:
    return (session or boto3.session.Session()).client(service, config=RETRIES)  # type: ignore[call-overload]
