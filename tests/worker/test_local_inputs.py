"""Local inputs read in place: a job submitted to the embedded AWS names its
local files, only a worker of the local fleet reads them, and a deployed
stack still gets them uploaded."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from submit.clients import Clients
from submit.resources import Resources
from submit.submission import submit_job
from submit.tracking import fetch_result
from tests.conftest import reference_wordcount
from worker import records, storage
from worker.consumer import DeadLetter, Delete, Delivery
from worker.ledger import ItemKey, ItemState, JobState, Phase
from worker.messages import BadMessage, MapTask, Piece, from_json, to_json
from worker.phases import MapReduce
from worker.reading import ChunkReader

TEXT = b"the cat\nthe hat\r\nand the bat\n"


def local_piece(path: Path, **changes: object) -> Piece:
    size = path.stat().st_size if path.exists() else 0
    piece = Piece(key="", name=path.name, index=0, base=0, size=size, start=0, end=size)
    return dataclasses.replace(piece, path=str(path), **changes)  # type: ignore[arg-type]


def map_body(pieces: tuple[Piece, ...], bucket: str = "b") -> str:
    return to_json(MapTask("j", 0, "wordcount", {}, 1, bucket, pieces))


def test_a_local_piece_survives_the_wire_and_bad_ones_are_refused(tmp_path: Path) -> None:
    good = local_piece(tmp_path / "x", size=10, end=10)
    task = from_json(map_body((good,)))
    assert isinstance(task, MapTask) and task.pieces == (good,)
    body = json.loads(map_body((good,)))
    for change, reason in [
        ({"path": "relative/x"}, "not absolute"),
        ({"path": 7}, "'path' is not"),
        ({"key": "pack-0000"}, "with an object key"),
        ({"bucket": "b"}, "with an object key"),
        ({"base": 5}, "with an object key"),
    ]:
        bad = {**body, "pieces": [{**body["pieces"][0], **change}]}
        with pytest.raises(BadMessage, match=reason):
            from_json(json.dumps(bad))
    # A version-2 message is read (a chunk queued before an upgrade), but
    # version 2 had no local paths.
    with pytest.raises(BadMessage, match="version-2 message names a local path"):
        from_json(json.dumps({**body, "version": 2, "pieces": [vars(good)]}))
    plain = {**body, "version": 2, "pieces": [{**vars(good), "path": None, "key": "k"}]}
    assert isinstance(from_json(json.dumps(plain)), MapTask)
    with pytest.raises(BadMessage, match="unknown schema version"):
        from_json(json.dumps({**body, "version": 1}))


def test_the_reader_reads_local_ranges_line_aligned_and_refuses_without_leave(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(TEXT)
    half = len(TEXT) // 2
    pieces = (local_piece(path, end=half), local_piece(path, start=half))

    def no_s3(bucket: str, key: str, start: int, end: int) -> bytes:
        raise AssertionError("a local piece went to S3")

    def read_local(p: str, size: int, start: int, end: int) -> bytes:
        return Path(p).read_bytes()[start:end]

    reader = ChunkReader(no_s3, pieces, "b", read_local=read_local)
    assert b"".join(reader.read(p).data for p in pieces) == TEXT
    with pytest.raises(ValueError, match="reads no local files"):
        ChunkReader(no_s3, pieces, "b").read(pieces[0])


@pytest.fixture
def worker(clients: Clients, resources: Resources) -> Callable[..., MapReduce]:
    def make(*, local_files: bool) -> MapReduce:
        return MapReduce(
            phase=Phase.MAP,
            s3=clients.s3,
            ledger=clients.ledger(resources),
            worker_id="w",
            sqs=clients.sqs,
            reduce_queue_url=resources.reduce_queue_url,
            local_files=local_files,
        )

    return make


def new_job(clients: Clients, resources: Resources) -> None:
    clients.ledger(resources).create_job(
        job_id="j",
        job="wordcount",
        params={},
        partitions=1,
        expected=1,
        bucket=resources.bucket,
        inputs=1,
        input_bytes=len(TEXT),
        max_failures=0,
    )


def delivery(body: str) -> Delivery:
    return Delivery(message_id="m", body=body, receives=1, last_receive=False)


def test_a_deployed_worker_refuses_a_local_file_for_good(
    worker: Callable[..., MapReduce], clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(TEXT)
    new_job(clients, resources)
    body = map_body((local_piece(secret),), resources.bucket)
    verdict = worker(local_files=False).handle(delivery(body))
    assert isinstance(verdict, DeadLetter)
    assert verdict.reason.startswith("BadMessage: the chunk names the local file")
    ledger = clients.ledger(resources)
    item = ledger.item("j", ItemKey.chunk(0))
    assert item is not None and item.state is ItemState.FAILED
    assert ledger.require("j").state is JobState.FAILED
    assert not clients.s3.list_objects_v2(Bucket=resources.bucket).get("Contents")


def test_a_local_worker_maps_the_file_as_planned_and_fails_a_shorter_one_for_good(
    worker: Callable[..., MapReduce], clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    # A file that grows after the job was planned (a log being written) is
    # read as it was: what was appended is not read, not even the rest of a
    # line the plan saw unfinished. It failed the job.
    path = tmp_path / "growing.log"
    path.write_bytes(TEXT + b"half")
    new_job(clients, resources)
    body = map_body((local_piece(path),), resources.bucket)
    with path.open("ab") as log:
        log.write(b"way the the\nmore lines\n")
    assert worker(local_files=True).handle(delivery(body)) == Delete("done")
    run = storage.get_object(clients.s3, resources.bucket, storage.map_key("j", 0, 0))
    got = dict(records.decode([run]))
    assert got["the"] == 3 and got["half"] == 1 and "halfway" not in got and "more" not in got

    path.write_bytes(TEXT)  # shorter than planned: cut, or replaced
    verdict = worker(local_files=True).handle(delivery(body.replace('"chunk":0', '"chunk":1')))
    assert isinstance(verdict, DeadLetter)
    assert verdict.reason.startswith("MissingObject") and "when the job was planned" in (
        verdict.reason
    )


def test_submit_names_local_files_for_the_embedded_aws_and_uploads_for_a_stack(
    clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    files = {}
    for i in range(3):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(TEXT * (i + 1))
        files[str(path)] = path.read_bytes()

    def submit(res: Resources) -> tuple[str, list[dict[str, object]], list[str]]:
        job_id = submit_job(
            clients,
            res,
            inputs=[str(tmp_path)],
            job="wordcount",
            params={},
            chunk_size_bytes=40,
            partitions=1,
        ).job_id
        plan = storage.get_json(clients.s3, res.bucket, storage.plan_key(job_id))
        pieces = [p for chunk in plan["chunks"] for p in from_json(json.dumps(chunk)).pieces]
        listed = clients.s3.list_objects_v2(Bucket=res.bucket, Prefix=f"jobs/{job_id}/input/")
        return job_id, pieces, [o["Key"] for o in listed.get("Contents", [])]

    assert resources.local
    _, pieces, stored = submit(resources)
    # Nothing uploaded: only the chunk plan, kept for `retry`.
    assert [k.rsplit("/", 1)[1] for k in stored] == ["chunks.json"]
    assert {p.path for p in pieces} == {str(Path(n).absolute()) for n in files}
    assert all(p.key == "" and p.base == 0 for p in pieces)

    _, pieces, stored = submit(dataclasses.replace(resources, local=False))
    assert sorted(k.rsplit("/", 1)[1] for k in stored) == ["chunks.json", "pack-0000"]
    assert all(p.path is None and p.key.endswith("pack-0000") for p in pieces)


def test_a_job_read_in_place_equals_the_reference(
    worker: Callable[..., MapReduce], clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    files = {}
    for i in range(4):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(TEXT * (i + 2) + "Straße ΣΑΣ\n".encode())
        files[str(path)] = path.read_bytes()
    job_id = submit_job(
        clients,
        resources,
        inputs=[str(tmp_path)],
        job="wordcount",
        params={},
        chunk_size_bytes=50,
        partitions=1,
    ).job_id
    mapper = worker(local_files=True)
    reducer = MapReduce(
        phase=Phase.REDUCE,
        s3=clients.s3,
        ledger=clients.ledger(resources),
        worker_id="r",
        sqs=clients.sqs,
        reduce_queue_url=resources.reduce_queue_url,
    )
    for url, handler in ((resources.map_queue_url, mapper), (resources.reduce_queue_url, reducer)):
        while got := clients.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages"):
            for m in got:
                assert handler.handle(delivery(m["Body"])) == Delete("done")
                clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert fetch_result(clients, resources, job_id) == reference_wordcount(files)
