"""The wire contract's version 4: a piece's fields that hold their defaults
are left out, and read back as they were; older versions still read."""

from __future__ import annotations

import json

import pytest

from worker.messages import SCHEMA_VERSION, BadMessage, MapTask, Piece, from_json, to_json

PIECES = (
    # A local file named by its path, whole.
    Piece(key="", name="/d/a.txt", index=0, base=0, size=10, start=0, end=10, path="/d/a.txt"),
    # A local file named otherwise, its second half.
    Piece(key="", name="b.txt", index=1, base=0, size=10, start=5, end=10, path="/d/b.txt"),
    # A file packed into an uploaded object, its first half.
    Piece(key="jobs/j/input/pack-0000", name="c.txt", index=2, base=20, size=8, start=0, end=4),
    # An S3 input of its own bucket, gzip.
    Piece(key="logs/x.gz", name="s3://logs/x.gz", index=3, base=0, size=7, start=0, end=7,
          gzip=True, bucket="logs"),
)  # fmt: skip


def task(pieces: tuple[Piece, ...] = PIECES) -> MapTask:
    return MapTask("j", 4, "wordcount", {}, 1, "bucket", pieces, step=1)


def test_pieces_read_back_as_they_were_written() -> None:
    assert from_json(to_json(task())) == task()


def test_a_piece_is_written_without_its_defaults() -> None:
    body = json.loads(to_json(task()))
    assert body["version"] == SCHEMA_VERSION == 4
    assert body["pieces"] == [
        {"index": 0, "size": 10, "path": "/d/a.txt"},
        {"name": "b.txt", "index": 1, "size": 10, "start": 5, "path": "/d/b.txt"},
        {"key": "jobs/j/input/pack-0000", "name": "c.txt", "index": 2, "base": 20, "size": 8,
         "end": 4},
        {"key": "logs/x.gz", "name": "s3://logs/x.gz", "index": 3, "size": 7, "gzip": True,
         "bucket": "logs"},
    ]  # fmt: skip


def test_a_version_3_message_with_every_field_still_reads() -> None:
    body = json.loads(to_json(task()))
    full = {**body, "version": 3, "pieces": [vars(p) for p in PIECES]}
    assert from_json(json.dumps(full)) == task()
    # Sent again (a retry), it goes as version 4.
    assert json.loads(to_json(from_json(json.dumps(full)))) == body


@pytest.mark.parametrize(
    ("piece", "reason"),
    [
        ({"index": 0, "size": 10}, "bad piece"),  # no name, no path
        ({"name": "a", "index": 0}, "bad piece"),  # no size
        ("a.txt", "not an object"),
        ({"name": "a", "index": 0, "size": 4, "end": 9}, "bad byte range"),
    ],
)
def test_a_version_4_piece_missing_what_has_no_default_is_refused(
    piece: object, reason: str
) -> None:
    body = {**json.loads(to_json(task())), "pieces": [piece]}
    with pytest.raises(BadMessage, match=reason):
        from_json(json.dumps(body))
