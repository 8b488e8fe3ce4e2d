"""The wire contract: every message on a Drover queue, versioned JSON.

A message names a job, its step, a chunk (or a reduce partition) and where
its data lives; it never names code (version 2 added the step, version 3
a piece's local `path`, version 4 leaves out a piece's fields that hold
their defaults: a chunk of small local files is mostly their paths, once
each, so a message holds two to three times as many). A task
knows its phase and its item in the ledger (`task.item`), and prints as
"job J chunk N", so no caller needs to tell the two kinds apart. Decoding
anything else raises `BadMessage`, which the worker treats as permanent
(the message goes to the dead-letter queue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from worker.ledger.model import ItemKey, Phase

SCHEMA_VERSION = 4
# Versions this worker reads: a version-2 message is a version-3 message
# without local paths, a version-3 one a version-4 one with every field of
# every piece, so a chunk queued before an upgrade still runs.
READS_VERSIONS = (2, 3, 4)
# A piece's fields that a version-4 message leaves out when they hold these
# values; it leaves out `end` too when it is `size` (the whole file), and
# `name` when it is `path` (a local file named by its absolute path).
PIECE_DEFAULTS: dict[str, Any] = {
    "key": "",
    "base": 0,
    "start": 0,
    "gzip": False,
    "bucket": None,
    "path": None,
}


class BadMessage(ValueError):
    """A message body that is not a Drover message of a known version."""


@dataclass(frozen=True)
class Piece:
    """A byte range [start, end) of one input file, to be read line-aligned.

    The file occupies bytes [base, base + size) of object `key` (local inputs
    uploaded for a deployed fleet are packed into a few objects; an S3 input
    has base 0), or, for a fleet on the submitting machine, is the local file
    `path`, read in place (then `key` is empty and `base` 0; only a worker
    the local fleet started reads one, worker.phases). `start` and `end` are
    offsets within the file. `index` is the file's position in the job's
    input order, `name` how the user named it.
    """

    key: str
    name: str
    index: int
    base: int
    size: int
    start: int
    end: int
    gzip: bool = False
    # The input's own bucket for an S3 input; None for an object in the
    # job's bucket (an uploaded local input).
    bucket: str | None = None
    # An absolute path on the submitting machine, for a local fleet.
    path: str | None = None


@dataclass(frozen=True)
class MapTask:
    job_id: str
    chunk: int
    job: str
    params: dict[str, Any]
    partitions: int
    bucket: str
    pieces: tuple[Piece, ...]
    # The job's step, from 0; a later step's pieces are the previous step's
    # results.
    step: int = 0
    kind: str = "map"
    version: int = SCHEMA_VERSION

    @property
    def phase(self) -> Phase:
        return Phase.MAP

    @property
    def item(self) -> ItemKey:
        return ItemKey.chunk(self.chunk, self.step)

    def __str__(self) -> str:
        return f"job {self.job_id} {self.item}"


@dataclass(frozen=True)
class ReduceTask:
    job_id: str
    partition: int
    job: str
    params: dict[str, Any]
    partitions: int
    chunks: int
    bucket: str
    step: int = 0
    kind: str = "reduce"
    version: int = SCHEMA_VERSION

    @property
    def phase(self) -> Phase:
        return Phase.REDUCE

    @property
    def item(self) -> ItemKey:
        return ItemKey.partition(self.partition, self.step)

    def __str__(self) -> str:
        return f"job {self.job_id} {self.item}"


Task = MapTask | ReduceTask


def to_json(task: Task) -> str:
    """The message body: the task's fields in order, its pieces' too (of a
    version-4 task, without those that hold their defaults), without
    `dataclasses.asdict`'s deep copy of every piece (a job of thousands of
    small files has thousands of pieces)."""
    body = dict(vars(task))
    if isinstance(task, MapTask):
        body["pieces"] = [compact_piece(p) if task.version >= 4 else vars(p) for p in task.pieces]
    return json.dumps(body, separators=(",", ":"))


def compact_piece(piece: Piece) -> dict[str, Any]:
    """A piece's fields as a version-4 message writes them."""
    fields = vars(piece)
    return {
        name: value
        for name, value in fields.items()
        if not (
            (
                name in PIECE_DEFAULTS
                and value == PIECE_DEFAULTS[name]
                and type(value) is type(PIECE_DEFAULTS[name])
            )
            or (name == "end" and value == piece.size)
            or (name == "name" and value == piece.path)
        )
    }


def piece_bytes(piece: Piece) -> int:
    """What a piece adds to a version-4 message: its JSON and a comma."""
    return len(json.dumps(compact_piece(piece), separators=(",", ":"))) + 1


def _full_piece(raw: Any) -> dict[str, Any]:
    """A version-4 piece's fields, those left out filled in."""
    if not isinstance(raw, dict):
        raise BadMessage(f"bad piece: not an object: {raw!r}")
    fields = {**PIECE_DEFAULTS, **raw}
    if "end" not in fields and "size" in fields:
        fields["end"] = fields["size"]
    if "name" not in fields and fields["path"] is not None:
        fields["name"] = fields["path"]
    return fields


def _require(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadMessage(f"field {name!r} missing or not {getattr(kind, '__name__', kind)}")
    return value


_PIECE_TYPES: dict[str, type | tuple[type, ...]] = {
    "key": str,
    "name": str,
    "index": int,
    "base": int,
    "size": int,
    "start": int,
    "end": int,
    "gzip": bool,
    "bucket": (str, type(None)),
    "path": (str, type(None)),
}


def _check_piece(p: Piece, version: int) -> None:
    for name, kind in _PIECE_TYPES.items():
        value = getattr(p, name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadMessage(f"piece field {name!r} is not {getattr(kind, '__name__', kind)}")
    if not (0 <= p.start <= p.end <= p.size) or p.base < 0:
        raise BadMessage(f"bad byte range {p.start}..{p.end} of a {p.size}-byte input")
    if p.path is None:
        return
    if version < 3:
        raise BadMessage(f"a version-{version} message names a local path")
    if not p.path.startswith("/") or "\0" in p.path:
        raise BadMessage(f"local path {p.path!r} is not absolute")
    if p.key or p.bucket is not None or p.base:
        raise BadMessage(f"local path {p.path!r} with an object key, bucket or base")


def from_json(text: str) -> Task:
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        raise BadMessage(f"not JSON: {e}") from e
    if not isinstance(body, dict):
        raise BadMessage("not a JSON object")
    version = body.get("version")
    if type(version) is not int or version not in READS_VERSIONS:
        raise BadMessage(
            f"unknown schema version {version!r} (this worker reads "
            f"{' and '.join(map(str, READS_VERSIONS))})"
        )
    kind = body.get("kind")
    common = {
        "job_id": _require(body, "job_id", str),
        "job": _require(body, "job", str),
        "params": _require(body, "params", dict),
        "partitions": _require(body, "partitions", int),
        "bucket": _require(body, "bucket", str),
        "step": _require(body, "step", int),
    }
    if common["partitions"] < 1:
        raise BadMessage("partitions must be at least 1")
    if common["step"] < 0:
        raise BadMessage("step must be 0 or more")
    if kind == "map":
        raw_pieces = _require(body, "pieces", list)
        if version >= 4:
            raw_pieces = [_full_piece(p) for p in raw_pieces]
        try:
            pieces = tuple(Piece(**p) for p in raw_pieces)
        except TypeError as e:
            raise BadMessage(f"bad piece: {e}") from e
        for p in pieces:
            _check_piece(p, version)
        return MapTask(chunk=_require(body, "chunk", int), pieces=pieces, **common)
    if kind == "reduce":
        partition = _require(body, "partition", int)
        if not 0 <= partition < common["partitions"]:
            raise BadMessage(f"partition {partition} out of range")
        return ReduceTask(
            partition=partition,
            chunks=_require(body, "chunks", int),
            **common,
        )
    raise BadMessage(f"unknown message kind {kind!r}")
