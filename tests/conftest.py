"""Shared fixtures: an in-process moto for unit tests, and reference
implementations of the job semantics written out here, independently of the
code under test, from the text of DESIGN.md."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from submit.clients import Clients
from submit.embedded import provision
from submit.resources import Resources
from worker.settings import Settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reaches real AWS or a developer's running embedded AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("DROVER_HOME", str(tmp_path_factory.mktemp("drover-home")))


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def clients(aws: None) -> Clients:
    return Clients(
        s3=boto3.client("s3"),
        sqs=boto3.client("sqs"),
        dynamodb=boto3.client("dynamodb"),
    )


@pytest.fixture
def resources(clients: Clients) -> Resources:
    return provision(
        s3=clients.s3,
        sqs=clients.sqs,
        dynamodb=clients.dynamodb,
        settings=Settings(visibility_timeout_s=30, max_receive_count=3),
    )


def reference_wordcount(files: Mapping[str, bytes]) -> dict[str, int]:
    total: collections.Counter[str] = collections.Counter()
    for content in files.values():
        total.update(re.findall(r"\w+", content.decode("utf-8", errors="replace").lower()))
    return dict(total)


def reference_grep(files: Mapping[str, bytes], pattern: str) -> list[dict[str, Any]]:
    out = []
    for name, content in files.items():
        raw = content.split(b"\n")
        if raw[-1] == b"":
            raw.pop()  # the newline ending the last line opens no new line
        for number, line in enumerate(raw, start=1):
            ended_by_newline = number < len(raw) or content.endswith(b"\n")
            if ended_by_newline and line.endswith(b"\r"):
                line = line[:-1]
            text = line.decode("utf-8", errors="replace")
            if re.search(pattern, text):
                out.append({"input": name, "line": number, "text": text})
    return out
