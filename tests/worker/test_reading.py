"""Line-aligned reading: every line belongs to exactly one range, whole."""

from __future__ import annotations

import itertools
import random

import pytest

from worker.messages import Piece
from worker.reading import OVERREAD_BYTES, ChunkReader, PieceData, read_piece, split_lines


def pieces_of(content: bytes, cuts: list[int]) -> list[PieceData]:
    bounds = [0, *sorted(set(cuts)), len(content)]
    calls: list[tuple[int, int]] = []

    def read(key: str, start: int, end: int) -> bytes:
        calls.append((start, end))
        return content[start:end]

    out = []
    for start, end in itertools.pairwise(bounds):
        if start == end:
            continue
        piece = Piece(key="k", name="f", index=0, base=0, size=len(content), start=start, end=end)
        out.append(read_piece(read, piece))
    return out


def assert_partition(content: bytes, cuts: list[int]) -> list[PieceData]:
    pieces = pieces_of(content, cuts)
    assert b"".join(p.data for p in pieces) == content
    for p in pieces:
        # Each piece holds whole lines only.
        assert p.data == b"" or p.data.endswith(b"\n") or content.endswith(p.data)
    return pieces


@pytest.mark.parametrize(
    "content",
    [
        b"alpha beta\ngamma\n\ndelta epsilon\n",
        b"no final newline\nlast line",
        b"crlf line\r\nanother\r\n",
        b"\n\n\n",
        b"x",
        "caf\u00e9 na\u00efve \u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2\n\u00fcber\n".encode(),
        b"bad \xff\xfe utf8\n\xc3\n",
    ],
)
def test_every_cut_point_gives_each_line_to_one_range(content: bytes) -> None:
    for cut in range(len(content) + 1):
        assert_partition(content, [cut])
    for a in range(len(content) + 1):
        for b in range(a, len(content) + 1, 3):
            assert_partition(content, [a, b])


def test_cut_inside_a_multibyte_character_never_splits_it() -> None:
    content = ("a\u00e9\u00e9\u00e9\n" * 5).encode()
    # Byte 2 is the middle of the first two-byte é.
    first, second = pieces_of(content, [2])
    assert first.data == "a\u00e9\u00e9\u00e9\n".encode()
    assert first.data.decode("utf-8") == "a\u00e9\u00e9\u00e9\n"
    assert second.data.decode("utf-8") == "a\u00e9\u00e9\u00e9\n" * 4


def test_a_line_longer_than_the_range_and_the_overread_is_read_whole() -> None:
    long_line = b"w" * (3 * OVERREAD_BYTES) + b"\n"
    content = b"short\n" + long_line + b"tail\n"
    pieces = assert_partition(content, [3, 100, 200])
    assert [p.data for p in pieces] == [b"short\n", long_line, b"", b"tail\n"]


def test_random_contents_and_cuts() -> None:
    rng = random.Random(7)
    alphabet = [b"a", b"b", b" ", b"\n", b"\r\n", "\u00e9".encode(), "\u20ac".encode(), b"\xff"]
    for _ in range(200):
        content = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        cuts = [rng.randint(0, len(content)) for _ in range(rng.randint(0, 6))]
        assert_partition(content, cuts)


def test_split_lines_follows_the_grep_line_rules() -> None:
    assert split_lines(b"") == []
    assert split_lines(b"a\n") == [b"a"]
    assert split_lines(b"a") == [b"a"]
    assert split_lines(b"a\r\nb\n\n") == [b"a", b"b", b""]
    # Only "\n" ends a line; a lone "\r" and a form feed are text.
    assert split_lines(b"a\rb\x0cc\n") == [b"a\rb\x0cc"]


def test_chunk_reader_reads_adjacent_packed_files_with_one_request() -> None:
    files = [b"one\n", b"two two\n", b"three\nthree\n", b"four"]
    pack = b"".join(files)
    requests: list[tuple[str, str, int, int]] = []

    def fetch(bucket: str, key: str, start: int, end: int) -> bytes:
        requests.append((bucket, key, start, end))
        return pack[start:end]

    pieces, base = [], 0
    for i, f in enumerate(files):
        pieces.append(
            Piece(key="pack", name=f"f{i}", index=i, base=base, size=len(f), start=0, end=len(f))
        )
        base += len(f)
    reader = ChunkReader(fetch, pieces, "bucket")
    assert [reader.read(p).data for p in pieces] == files
    assert len(requests) == 1
