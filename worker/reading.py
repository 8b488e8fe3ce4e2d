"""Reading a piece of input line-aligned, the way Hadoop's line reader does.

A line belongs to the piece in which it starts: a reader of [start, end)
skips the partial first line (unless start is 0) and reads past `end` to
finish its last line. Only b"\\n" ends a line, and it never occurs inside a
UTF-8 multi-byte sequence, so no character is ever cut.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass

from worker.messages import Piece

# Bytes read past a piece's end in the first request to finish its last line;
# a longer line costs one more ranged GET per doubling.
OVERREAD_BYTES = 64 * 1024

# Reads bytes [start, end) of an object key.
RangeReader = Callable[[str, int, int], bytes]


@dataclass(frozen=True)
class PieceData:
    """The complete lines a piece owns, as raw bytes."""

    name: str
    index: int
    start: int
    data: bytes


def owned_region(buf: bytes, lo: int, start: int, end: int, size: int) -> tuple[int, int] | None:
    """Offsets (within the file) of the lines starting in [start, end).

    `buf` holds the file's bytes from offset `lo`. Returns None when no line
    starts in the range, and (first, -1) when the last line's end is not in
    `buf` yet.
    """
    if start == 0:
        first = 0
    else:
        # A line starts at p when p == 0 or byte p-1 is a newline.
        nl = buf.find(b"\n", start - 1 - lo, end - 1 - lo)
        if nl == -1:
            return None
        first = lo + nl + 1
    if first >= end:
        return None
    nl = buf.find(b"\n", end - 1 - lo)
    if nl == -1:
        return (first, size) if lo + len(buf) >= size else (first, -1)
    return first, lo + nl + 1


def read_piece(read: RangeReader, piece: Piece) -> PieceData:
    if piece.gzip:
        raw = read(piece.key, piece.base, piece.base + piece.size)
        return PieceData(piece.name, piece.index, 0, gzip.decompress(raw))
    if piece.start >= piece.end:
        return PieceData(piece.name, piece.index, piece.start, b"")
    lo = piece.start - 1 if piece.start > 0 else 0
    hi = min(piece.size, piece.end + OVERREAD_BYTES)
    buf = read(piece.key, piece.base + lo, piece.base + hi)
    grow = OVERREAD_BYTES
    while True:
        region = owned_region(buf, lo, piece.start, piece.end, piece.size)
        if region is None:
            return PieceData(piece.name, piece.index, piece.start, b"")
        first, last = region
        if last != -1:
            return PieceData(piece.name, piece.index, piece.start, buf[first - lo : last - lo])
        grow *= 2
        more_to = min(piece.size, hi + grow)
        buf += read(piece.key, piece.base + hi, piece.base + more_to)
        hi = more_to


def split_lines(data: bytes) -> list[bytes]:
    """The lines of complete-line bytes: ended by b"\\n" or the end of input,
    without the b"\\n" and one b"\\r" just before it."""
    if not data:
        return []
    lines = data.split(b"\n")
    last = lines.pop()
    out = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if last:
        out.append(last)
    return out
