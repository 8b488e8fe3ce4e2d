"""The whole pipeline on one machine: real worker processes, scaled by the
local fleet, against moto's server, compared with the reference semantics."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from submit.local import LocalDrover, LocalOptions
from submit.submission import submit_job
from submit.tracking import fetch_result, job_status, wait_for
from tests.conftest import reference_grep, reference_wordcount
from worker.ledger import Phase
from worker.settings import Settings

VOCABULARY = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "it",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "Straße",
    "über",
    "naïve",
    "café",
    "λόγος",
    "ΟΔΟΣ",
    "дом",
    "東京",
    "İstanbul",
    "ERROR",
    "warning",
    "x_1",
    "42",
    "3.14",
    "don't",
    "e-mail",
]


def write_corpus(root: Path, seed: int, files: int = 6, lines: int = 900) -> dict[str, bytes]:
    """A multi-file corpus with a skewed vocabulary, CRLF, invalid UTF-8,
    blank lines and a file with no final newline."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    out = {}
    for f in range(files):
        rows = []
        for _ in range(lines):
            n = rng.randint(0, 14)
            row = " ".join(rng.choices(VOCABULARY, weights, k=n))
            rows.append(row + rng.choice(["", "", ".", ",", "!", "\r"]))
        content = "\n".join(rows).encode()
        if f % 3 == 0:
            content += b"\n"
        if f == 1:
            content += b"\n\xff\xfeinvalid \xc3 bytes ERROR\n"
        path = root / f"part-{f:02d}.txt"
        path.write_bytes(content)
        out[str(path)] = content
    (root / "empty.txt").write_bytes(b"")
    out[str(root / "empty.txt")] = b""
    return dict(sorted(out.items()))


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDrover]:
    options = LocalOptions(
        max_workers=3,
        settings=Settings(visibility_timeout_s=30, max_receive_count=3),
        idle_s=2,
        poll_s=0.5,
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    with LocalDrover(options) as drover:
        yield drover


def test_wordcount_and_grep_equal_the_reference(local: LocalDrover, tmp_path: Path) -> None:
    files = write_corpus(tmp_path, seed=11)
    assert local.resources is not None and local.fleet is not None
    clients = local.clients()
    submitted = submit_job(
        clients,
        local.resources,
        inputs=[str(tmp_path)],
        job="wordcount",
        params={},
        chunk_size_bytes=3000,
        partitions=3,
    )
    assert submitted.chunks >= 50
    pattern = r"(?i)error|\bstra\u00dfe\b.*\d"
    grep = submit_job(
        clients,
        local.resources,
        inputs=[str(tmp_path)],
        job="grep",
        params={"pattern": pattern},
        chunk_size_bytes=3000,
        partitions=2,
    )
    for job_id in (submitted.job_id, grep.job_id):
        status = wait_for(clients, local.resources, job_id, timeout_s=180)
        assert status.state == "SUCCEEDED", status
        assert status.done == status.expected
    assert fetch_result(clients, local.resources, submitted.job_id) == reference_wordcount(files)
    grep_result = fetch_result(clients, local.resources, grep.job_id)
    assert grep_result == reference_grep(files, pattern)
    assert len(grep_result) > 10
    assert local.fleet.peak(Phase.MAP) >= 2

    summary = job_status(clients, local.resources, submitted.job_id).summary
    assert summary is not None
    reference = reference_wordcount(files)
    assert summary["total"] == sum(reference.values())
    assert summary["distinct"] == len(reference)
    assert summary["top"][0] == ["the", reference["the"]]


def test_an_empty_input_succeeds_with_an_empty_result(local: LocalDrover, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    assert local.resources is not None
    clients = local.clients()
    for job, params in (("wordcount", {}), ("grep", {"pattern": "x"})):
        submitted = submit_job(
            clients,
            local.resources,
            inputs=[str(tmp_path)],
            job=job,
            params=params,
            chunk_size_bytes=1024,
            partitions=2,
        )
        assert submitted.chunks == 0
        status = wait_for(clients, local.resources, submitted.job_id, timeout_s=60)
        assert status.state == "SUCCEEDED"
        assert fetch_result(clients, local.resources, submitted.job_id) in ({}, [])


def test_the_fleet_scales_back_to_zero_when_idle(local: LocalDrover) -> None:
    assert local.fleet is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        local.fleet.workers(Phase.MAP) or local.fleet.workers(Phase.REDUCE)
    ):
        time.sleep(0.5)
    assert local.fleet.workers(Phase.MAP) == []
    assert local.fleet.workers(Phase.REDUCE) == []


def test_cli_one_shot_run_writes_the_result(tmp_path: Path) -> None:
    corpus = tmp_path / "in"
    corpus.mkdir()
    files = write_corpus(corpus, seed=5, files=3, lines=200)
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "submit",
            "run",
            "--local",
            "--job",
            "wordcount",
            "--chunk-size",
            "2KB",
            "--max-workers",
            "2",
            "--top",
            "5",
            "--output",
            str(out),
            "--compare",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == reference_wordcount(files)
    assert "SUCCEEDED" in proc.stdout
    assert "peak workers" in proc.stdout
    assert "results are identical" in proc.stdout


def test_workers_woken_before_the_embedded_aws_serves_wait_for_their_queue(
    tmp_path: Path,
) -> None:
    """`run --local` wakes its map workers right after `launch`, before the
    embedded AWS serves and its queues exist: they must wait for them and
    then serve, not die at start-up and be started again."""
    (tmp_path / "in").mkdir()
    files = write_corpus(tmp_path / "in", seed=9, files=2, lines=100)
    local = LocalDrover(LocalOptions(max_workers=2, log_dir=tmp_path / "logs"))
    local.launch()
    try:
        assert local.fleet is not None and local.resources is not None
        local.fleet.wake(Phase.MAP, 2)
        early = {p.pid for p in local.fleet.workers(Phase.MAP)}
        assert len(early) == 2
        # The URLs they were given are those the embedded AWS then makes.
        assert local.start() == local.resources
        clients = local.clients()
        submitted = submit_job(
            clients,
            local.resources,
            inputs=[str(tmp_path / "in")],
            job="wordcount",
            params={},
            chunk_size_bytes=2048,
            partitions=1,
        )
        status = wait_for(clients, local.resources, submitted.job_id, timeout_s=120)
        assert status.state == "SUCCEEDED"
        assert fetch_result(clients, local.resources, submitted.job_id) == reference_wordcount(
            files
        )
        # Served by the workers woken first: none died and was replaced.
        assert local.fleet.pools[Phase.MAP].started == 2
        assert early <= {p.pid for p in local.fleet.workers(Phase.MAP)}
    finally:
        local.stop()
