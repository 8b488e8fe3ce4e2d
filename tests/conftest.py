"""Shared fixtures: an in-process moto for unit tests, and reference
implementations of the job semantics written out here, independently of the
code under test, from the text of DESIGN.md."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


@contextmanager
def counting(clients: Clients) -> Iterator[list[str]]:
    """Every API call the clients make, as service.Operation."""
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        calls.append(f"{service}.{operation}")

    owned = (clients.s3, clients.sqs, clients.dynamodb)
    for client in owned:
        client.meta.events.register("before-call", count)
    try:
        yield calls
    finally:
        for client in owned:
            client.meta.events.unregister("before-call", count)


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


def _words(content: bytes) -> list[str]:
    return re.findall(r"\w+", content.decode("utf-8", errors="replace").lower())


def reference_inverted_index(files: Mapping[str, bytes]) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for name, content in files.items():
        for word in _words(content):
            seen[word].add(name)
    return {word: sorted(names) for word, names in sorted(seen.items())}


def reference_top_words(files: Mapping[str, bytes], n: int) -> dict[str, int]:
    counts = collections.Counter(w for content in files.values() for w in _words(content))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return dict(ranked)


def reference_access_log(files: Mapping[str, bytes]) -> dict[str, Any]:
    """Common and combined log format, read field by field: host, ident,
    user, [time], "request", status, bytes, then optionally "referer"
    "agent"; anything else is a bad line."""
    status: collections.Counter[str] = collections.Counter()
    path: collections.Counter[str] = collections.Counter()
    bad = 0
    for content in files.values():
        text = content.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        for line in lines:
            parsed = _parse_access(line.rstrip())
            if parsed is None:
                bad += 1
                continue
            code, target = parsed
            status[code] += 1
            if target:
                path[target.partition("?")[0]] += 1
    return {
        "status": dict(sorted(status.items())),
        "path": dict(sorted(path.items())),
        "bad_lines": bad,
    }


def _quoted(text: str) -> tuple[str, str] | None:
    """A "..." field at the start of `text` (a backslash escapes the next
    character, as Apache writes a quote inside one), and what follows it."""
    if not text.startswith('"'):
        return None
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return text[1:i], text[i + 1 :]
        else:
            i += 1
    return None


def _parse_access(line: str) -> tuple[str, str] | None:
    head, sep, rest = line.partition(" [")
    if not sep or len(head.split(" ")) != 3 or "" in head.split(" "):
        return None
    _, sep, rest = rest.partition("] ")
    quoted = _quoted(rest) if sep else None
    if quoted is None or not quoted[1].startswith(" "):
        return None
    request, rest = quoted[0], quoted[1][1:]
    fields = rest.split(" ", 2)
    if request == "-":  # no request line: a status, and no path
        parsed = _parse_access(line.replace('"-"', '"GET - HTTP/1.0"', 1))
        return None if parsed is None else (parsed[0], "")
    if len(fields) < 2 or len(fields[0]) != 3 or not fields[0].isdigit():
        return None
    if not (fields[1] == "-" or fields[1].isdigit()):
        return None
    if len(fields) == 3:
        referer = _quoted(fields[2])
        agent = _quoted(referer[1][1:]) if referer and referer[1].startswith(" ") else None
        if agent is None or agent[1]:
            return None
    parts = request.split(" ")
    if len(parts) not in (2, 3) or not parts[0].isalpha() or not parts[0].isupper():
        return None
    if not parts[1] or (len(parts) == 3 and not parts[2]):
        return None
    return fields[0], parts[1]
