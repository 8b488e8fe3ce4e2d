"""Sorted runs of (key, value) records, and the merge that groups a key's
values across any number of them in bounded memory.

A run holds records sorted by key in Python's string order; records of one
key keep the order they were written in. It is UTF-8 JSON, in one of two
layouts, told apart by a line's first byte:
- lines, one `[key, value]` a line (`encode`): reduce results, which users
  read and the next step of a job maps line by line like any input;
- column blocks, one `{"keys": [...], "values": [...]}` a line for some
  32 KiB of records (`encode_columns`): map outputs and the merge's own
  spilled runs, read only by this module. They hold the same records and
  parse three to four times faster, with two lists a block rather than a
  list a record: the reducer, which parses every map output, runs alone
  after the map.

Reading a run takes one block at a time and parses it in one call, so a
reader holds a block and its records, never the run. `merge` joins runs
with `heapq.merge`; it holds at most `fan_in` of them open at once. Given
more (a job of thousands of chunks), it first merges them `fan_in` at a
time into runs spilled to the temporary directory, and again, until
`fan_in` or fewer are left: memory stays a block per open run whatever the
number of chunks, at the price of writing the records to local disk once
per extra level. `grouped` then hands out one key and an iterator over its
values at a time, so a reducer holds only what it keeps of one key.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from json.encoder import encode_basestring as _string
from math import isfinite
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, TypeVar

# Bytes read and parsed at a time from each run being merged: with the
# parsed records, some 300 KiB per open run.
BLOCK_BYTES = 32 << 10
# Runs merged at once (open S3 streams, or spilled files).
MERGE_FAN_IN = 64
# Runs opened at once as a merge starts (worker.clients keeps a connection
# for each run of a fan-in).
OPEN_THREADS = 8

Record = tuple[str, Any]
# Opens a run and returns its bytes, a block at a time.
Source = Callable[[], Iterable[bytes]]

# NaN and the infinities are not JSON: a value holding one is refused where
# it is written, naming its key, not where a later reader chokes on it.
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_key = itemgetter(0)
T = TypeVar("T")


class BadRecord(ValueError):
    """A record a run cannot hold: a key that is not a string, a value that
    is not JSON."""


def encode(records: Iterable[Record], *, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The lines of `records`, in blocks of about `block_bytes`."""
    dumps = _DUMPS
    lines: list[str] = []
    size = 0
    for key, value in records:
        if type(key) is not str:
            raise BadRecord(f"keys are strings; got {type(key).__name__} {key!r}")
        # Counts and words, the common values, spelled directly: what the
        # encoder would write, four times faster than a call to it.
        kind = type(value)
        if kind is int:
            line = f"[{_string(key)},{value}]"
        elif kind is str:
            line = f"[{_string(key)},{_string(value)}]"
        else:
            try:
                line = dumps([key, value])
            except (TypeError, ValueError) as e:
                raise BadRecord(f"the value of key {key!r} is not JSON: {e}") from e
        lines.append(line)
        size += len(line) + 1
        if size >= block_bytes:
            yield ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
            lines, size = [], 0
    if lines:
        yield ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def to_bytes(records: Iterable[Record]) -> bytes:
    return b"".join(encode(records))


# Values whose size in a column block is bounded: a batch of them is sized
# at once, at most this many bytes each.
_SMALL_VALUES = frozenset({int, float, bool, type(None)})
_SMALL_VALUE_BYTES = 24
# Records taken at a time by `encode_columns`.
_BATCH = 512
# What the encoder escapes in a string, with ensure_ascii=False, but the
# double quote.
_ESCAPED = re.compile(r"[\\\x00-\x1f]")


def _value_size(key: str, value: Any) -> int:
    """About the bytes `value` takes in a column block, checked to be JSON."""
    kind = type(value)
    if kind in _SMALL_VALUES:
        return _SMALL_VALUE_BYTES
    if kind is str:
        return len(value) + 2
    try:
        return len(_DUMPS(value))
    except (TypeError, ValueError) as e:
        raise BadRecord(f"the value of key {key!r} is not JSON: {e}") from e


def _bad_key(keys: Iterable[Any]) -> BadRecord:
    key = next(k for k in keys if type(k) is not str)
    return BadRecord(f"keys are strings; got {type(key).__name__} {key!r}")


def encode_columns(records: Iterable[Record], *, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """`records` as column blocks: a line `{"keys":[...],"values":[...]}`
    per block of about `block_bytes`. The same records as `encode`'s lines,
    read back by the same `decode`, but parsed several times faster: two
    lists a block rather than a list a record. For runs that only this
    module reads (map outputs, spilled runs); results stay lines, one
    record a line, for users and for the next step's map.

    Records are checked and sized a batch at a time, in C (a set of the
    keys' types, a sum of their lengths), but for values of unbounded size,
    sized one by one so that a block stays near `block_bytes`."""
    it = iter(records)
    keys: list[str] = []
    values: list[Any] = []
    size = 0
    while batch := list(itertools.islice(it, _BATCH)):
        batch_keys = [key for key, _ in batch]
        batch_values = [value for _, value in batch]
        if set(map(type, batch_keys)) != {str}:
            raise _bad_key(batch_keys)
        kinds = set(map(type, batch_values))
        if kinds <= _SMALL_VALUES or kinds == {str}:
            keys.extend(batch_keys)
            values.extend(batch_values)
            size += sum(map(len, batch_keys)) + (
                sum(map(len, batch_values))
                if str in kinds
                else _SMALL_VALUE_BYTES * len(batch_values)
            )
            if size >= block_bytes:
                yield _column_block(keys, values)
                keys, values, size = [], [], 0
            continue
        for key, value in batch:
            keys.append(key)
            values.append(value)
            size += len(key) + _value_size(key, value)
            if size >= block_bytes:
                yield _column_block(keys, values)
                keys, values, size = [], [], 0
    if keys:
        yield _column_block(keys, values)


def _column_block(keys: list[str], values: list[Any]) -> bytes:
    # Keys that need no escape (words, mostly) are joined as they are: what
    # the encoder would write, three times faster.
    joined = '","'.join(keys)
    plain = joined.count('"') == 2 * (len(keys) - 1) and not _ESCAPED.search(joined)
    keys_json = f'["{joined}"]' if plain else _DUMPS(keys)
    try:
        values_json = _DUMPS(values)
    except ValueError as e:  # NaN or an infinity, among values sized as numbers
        key = next(
            k for k, v in zip(keys, values, strict=True) if type(v) is float and not isfinite(v)
        )
        raise BadRecord(f"the value of key {key!r} is not JSON: {e}") from e
    line = f'{{"keys":{keys_json},"values":{values_json}}}\n'
    return line.encode("utf-8", "surrogatepass")


def pack(records: Iterable[Record]) -> bytes:
    """A run of `records` in column blocks (`encode_columns`)."""
    return b"".join(encode_columns(records))


def decode(blocks: Iterable[bytes]) -> Iterator[Record]:
    """The records of a run given as blocks of bytes cut anywhere."""
    for parsed in decode_blocks(blocks):
        yield from parsed


def decode_blocks(blocks: Iterable[bytes]) -> Iterator[list[Record]]:
    """The records of a run given as blocks of bytes cut anywhere, a
    non-empty list per block (of lists [key, value] from lines, of tuples
    from column blocks)."""
    for lines in _whole_lines(blocks):
        if lines.startswith(b"{"):
            for keys, values in _columns(lines):
                yield list(zip(keys, values, strict=True))
        elif parsed := _rows(lines):
            yield parsed


def decode_columns(blocks: Iterable[bytes]) -> Iterator[tuple[list[str], list[Any]]]:
    """The records of a run given as blocks of bytes cut anywhere, as
    (keys, values) lists, non-empty, a pair per block."""
    for lines in _whole_lines(blocks):
        if lines.startswith(b"{"):
            yield from _columns(lines)
        elif parsed := _rows(lines):
            yield [key for key, _ in parsed], [value for _, value in parsed]


def _whole_lines(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of `blocks` a few at a time, each time whole lines without
    their last newline."""
    tail = b""
    for block in blocks:
        data = tail + block if tail else block
        cut = data.rfind(b"\n")
        if cut == -1:
            tail = data
            continue
        tail = data[cut + 1 :]
        yield data[:cut]
    if tail.strip():
        yield tail


def _rows(lines: bytes) -> list[Any]:
    # One call parses a whole block of lines: far cheaper than one per line.
    rows: list[Any] = json.loads(b"[" + lines.replace(b"\n", b",") + b"]")
    return rows


def _columns(lines: bytes) -> Iterator[tuple[list[str], list[Any]]]:
    for line in lines.split(b"\n"):
        block = json.loads(line)
        keys, values = block["keys"], block["values"]
        if len(keys) != len(values):
            raise ValueError(f"a column block of {len(keys)} keys has {len(values)} values")
        if keys:
            yield keys, values


def file_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(block_bytes):
            yield block


def _write(path: Path, records: Iterable[Record]) -> None:
    with path.open("wb") as f:
        for block in encode_columns(records):
            f.write(block)


def _started(runs: Sequence[Iterator[T]]) -> list[Iterator[T]]:
    """Each of `runs` with its first item taken, concurrently, and put back
    in front. Taking it opens the run (a GET, for a map output in S3) and
    reads its first block: one after another, a reducer of many small map
    outputs spent most of its time waiting for those answers."""
    if len(runs) < 2:
        return list(runs)

    def head(run: Iterator[T]) -> list[T]:
        return list(itertools.islice(run, 1))

    with ThreadPoolExecutor(min(OPEN_THREADS, len(runs))) as pool:
        heads = list(pool.map(head, runs))
    return [_resumed(first, run) for first, run in zip(heads, runs, strict=True)]


def _resumed(head: list[T], run: Iterator[T]) -> Iterator[T]:
    """`head`'s item, then the rest of `run`, holding the item no longer
    than its reader does (itertools.chain would keep it to the end: a block
    per run for the whole merge)."""
    if head:
        yield head.pop()
    yield from run


def _merge_open(sources: Sequence[Source]) -> Iterator[Record]:
    # Records of equal keys come out in the order of `sources`.
    return heapq.merge(*_started([decode(s()) for s in sources]), key=_key)


def _sum_open(sources: Sequence[Source]) -> Iterator[Record]:
    """(key, the sum of its values) in key order, from runs of numbers that
    hold a key once each (a map output's combined counts).

    Block by block rather than record by record: the smallest last key of
    the blocks in hand (the frontier) bounds every key still to come from
    any run, so all records up to it, in every block in hand, are added up
    in one dict, run by run, and written out in key order; each round uses
    up at least one block. Memory stays a block per run and the keys of one
    round. A block's keys and values come as two lists (`decode_columns`),
    never a tuple a record."""
    blocks = _started([decode_columns(s()) for s in sources])
    # [keys, values, position, the run's remaining blocks]
    hand: list[list[Any]] = []
    for run in blocks:
        first = next(run, None)
        if first is not None:
            hand.append([*first, 0, run])
    while hand:
        frontier = min(h[0][-1] for h in hand)
        sums: dict[str, Any] = {}
        get = sums.get
        kept = []
        for h in hand:
            keys, values, at, run = h
            end = bisect.bisect_right(keys, frontier, lo=at)
            # A key's values are added in the order of the runs, from 0, as
            # sum() would.
            for key, value in zip(keys[at:end], values[at:end], strict=True):
                sums[key] = get(key, 0) + value
            if end < len(keys):
                h[2] = end
                kept.append(h)
                continue
            following = next(run, None)
            if following is not None:
                h[:3] = [*following, 0]
                kept.append(h)
        hand = kept
        for key in sorted(sums):
            yield key, sums[key]


def merge(
    sources: Sequence[Source],
    *,
    fan_in: int = MERGE_FAN_IN,
    spill_dir: str | None = None,
    sums: bool = False,
) -> Iterator[Record]:
    """Every record of every run, in key order, with at most `fan_in` runs
    open at once (see the module's docstring). With `sums`, for runs whose
    values are numbers to be added up (a sum reducer's): one record per key,
    its values summed, merged block by block (`_sum_open`), several times
    faster than record by record."""
    if fan_in < 2:
        raise ValueError(f"a merge needs a fan-in of 2 or more, got {fan_in}")
    opened = _sum_open if sums else _merge_open
    runs = list(sources)
    levels: list[str] = []
    try:
        while len(runs) > fan_in:
            level = tempfile.mkdtemp(prefix="drover-merge-", dir=spill_dir)
            levels.append(level)
            spilled: list[Source] = []
            for i in range(0, len(runs), fan_in):
                path = Path(level) / f"run-{i // fan_in:06d}.jsonl"
                _write(path, opened(runs[i : i + fan_in]))
                spilled.append(partial(file_blocks, path))
            runs = spilled
            if len(levels) > 1:
                # The level just merged is no longer needed.
                shutil.rmtree(levels.pop(-2), ignore_errors=True)
        yield from opened(runs)
    finally:
        for level in levels:
            shutil.rmtree(level, ignore_errors=True)


def grouped(records: Iterable[Record]) -> Iterator[tuple[str, Iterator[Any]]]:
    """(key, its values) for sorted records, one key at a time; a key's
    values not read before the next key is taken are skipped."""
    for key, group in itertools.groupby(records, key=_key):
        yield key, map(itemgetter(1), group)


def write_stream(out: IO[bytes], records: Iterable[Record]) -> int:
    """Write records to a file object; the number of bytes written."""
    written = 0
    for block in encode(records):
        out.write(block)
        written += len(block)
    return written


def bytes_blocks(data: bytes, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """A run held in memory, a block at a time."""
    for start in range(0, len(data), block_bytes):
        yield data[start : start + block_bytes]
