"""Runs in column blocks (map outputs, spilled runs): the same records as
lines, read back by the same reader."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from worker import records

KEYS = [
    "",
    "a",
    'a"quote',
    "back\\slash",
    "tab\tnew\nline",
    "straße",
    "λόγος",
    "\ud800",
    "x\u2028y",
]


@pytest.mark.parametrize(
    "value", ['x\u2028"y\n', "\ud800", 1.5, True, None, [1, "a"], {"a": 1}, -3, 10**30]
)
def test_a_column_run_reads_back_the_records_a_line_run_holds(value: Any) -> None:
    pairs = [(key, value) for key in sorted(KEYS)]
    columns = b"".join(records.encode_columns(pairs, block_bytes=40))
    lines = records.to_bytes(pairs)
    # Read back cut anywhere, as from a stream.
    got = list(records.decode(records.bytes_blocks(columns, 7)))
    assert got == pairs
    assert [list(r) for r in got] == list(records.decode([lines]))


def test_each_column_block_is_a_json_line_of_keys_and_values() -> None:
    pairs = sorted((f"w{i:05d}", i) for i in range(5000))
    run = records.pack(pairs)
    blocks = [json.loads(line) for line in run.splitlines()]
    assert len(blocks) > 2, "a run of 5,000 records is cut into blocks"
    assert [k for b in blocks for k in b["keys"]] == [k for k, _ in pairs]
    assert [v for b in blocks for v in b["values"]] == [v for _, v in pairs]
    assert all(len(line) < 2 * records.BLOCK_BYTES for line in run.splitlines())


def test_large_values_keep_column_blocks_near_their_size() -> None:
    pairs = [(f"doc{i:04d}", list(range(400))) for i in range(300)]
    run = b"".join(records.encode_columns(pairs, block_bytes=8 << 10))
    lines = run.splitlines()
    one = len(json.dumps(list(range(400)), separators=(",", ":")))
    assert len(lines) > 20
    assert max(len(line) for line in lines) < (8 << 10) + 2 * one
    assert list(records.decode([run])) == pairs


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("a", 1), (2, 1)], r"keys are strings; got int 2"),
        ([("a", 1), ("b", {1, 2})], r"the value of key 'b' is not JSON"),
        # NaN and the infinities passed the map and failed the reduce, five
        # times, with an error that named no key.
        ([("a", 1.5), ("b", float("nan"))], r"the value of key 'b' is not JSON: Out of range"),
        ([("a", 1), ("c", [1, float("inf")])], r"the value of key 'c' is not JSON: Out of range"),
    ],
)
def test_a_run_refuses_what_json_cannot_hold(pairs: Any, message: str) -> None:
    with pytest.raises(records.BadRecord, match=message):
        records.pack(pairs)
    with pytest.raises(records.BadRecord, match=message):
        records.to_bytes(pairs)


def test_a_merge_reads_column_runs_and_line_runs_alike(tmp_path: Any) -> None:
    first = [("a", 1), ("c", 2), ("e", 3)]
    second = [("b", 4), ("c", 5), ("f", 6)]
    runs = [
        partial(records.bytes_blocks, records.pack(first), 5),
        partial(records.bytes_blocks, records.to_bytes(second), 5),
    ]
    assert [tuple(r) for r in records.merge(runs)] == sorted(first + second)
    assert list(records.merge(runs, sums=True)) == [
        ("a", 1),
        ("b", 4),
        ("c", 7),
        ("e", 3),
        ("f", 6),
    ]
