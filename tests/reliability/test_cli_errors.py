"""The CLI's errors on a job, as a user meets them: one line, the right exit
code, no traceback, and numbers that tell the truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from submit.cli import EXIT_FAILED, main
from tests.reliability.conftest import Stack, write_corpus
from worker import storage
from worker.ledger import ItemKey


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def stack(make_stack) -> Stack:  # type: ignore[no-untyped-def]
    stack = make_stack()
    stack.serve_cli()
    return stack


def test_wait_timeout_counts_the_failed_chunks(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_corpus(tmp_path / "in", files=3, lines=30, seed=2)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=400, max_failures=5)
    stack.ledger.record_failure(
        job_id, ItemKey.chunk(1), attempts=3, error="OSError: flaky", worker_id="w", final=True
    )
    code, out, err = run(capsys, "wait", job_id, "--timeout", "0.5", "--json")
    status = json.loads(out)
    assert code == EXIT_FAILED and "still PENDING" in err
    assert status["failed"] == 1
    assert [c["chunk"] for c in status["failed_chunks"]] == [1]


def test_a_result_gone_from_the_bucket_is_one_line(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_corpus(tmp_path / "in", files=1, lines=5, seed=3)
    job_id = stack.submit(list(files), "wordcount", {}, chunk_size_bytes=1 << 20, partitions=1)
    ledger = stack.ledger
    ledger.complete(job_id, ItemKey.chunk(0), attempts=1, worker="w")
    ledger.complete(job_id, ItemKey.partition(0), summary={}, worker="r")
    assert ledger.finalize(job_id, {}, "s3://x")
    assert "Contents" not in stack.clients.s3.list_objects_v2(
        Bucket=stack.resources.bucket, Prefix=storage.result_prefix(job_id)
    )
    code, _, err = run(capsys, "result", job_id)
    assert code == EXIT_FAILED
    (line,) = err.strip().splitlines()
    assert f"job {job_id}: its result is gone from the bucket" in line
