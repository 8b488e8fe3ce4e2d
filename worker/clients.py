"""boto3 clients with botocore's standard retry mode. Endpoints come from the
standard chain, so AWS_ENDPOINT_URL points every client at a local AWS."""

from __future__ import annotations

import os
import threading
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


# A session resolves credentials once; a new one is made should the
# variables it reads change (tests change them between cases).
_SESSION_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
)
_sessions: dict[tuple[str | None, ...], boto3.session.Session] = {}
_lock = threading.Lock()


def client(service: str, session: boto3.session.Session | None = None) -> Any:
    """A client of `service`. Without `session`, from one session per process:
    the clients then share the service data it loaded, which makes every
    client after the first nearly free (a worker's start-up makes several in
    each of its two processes)."""
    config = S3_CONFIG if service == "s3" else RETRIES
    if session is not None:
        return session.client(service, config=config)  # type: ignore[call-overload]
    env = tuple(os.environ.get(name) for name in _SESSION_ENV)
    with _lock:  # a session is not safe to share across threads
        shared = _sessions.get(env)
        if shared is None:
            shared = _sessions[env] = boto3.session.Session()
        return shared.client(service, config=config)  # type: ignore[call-overload]
