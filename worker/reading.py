"""Reading a piece of input line-aligned, the way Hadoop's line reader does.

A line belongs to the piece in which it starts: a reader of [start, end)
skips the partial first line (unless start is 0) and reads past `end` to
finish its last line. Only b"\\n" ends a line, and it never occurs inside a
UTF-8 multi-byte sequence, so no character is ever cut.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Sequence
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
        try:
            data = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise CorruptInput(f"{piece.name}: not a whole gzip file ({e})") from e
        return PieceData(piece.name, piece.index, 0, data)
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


class CorruptInput(ValueError):
    """An input that cannot be decoded as what it claims to be (a .gz file
    that is not gzip, or is cut short): reading it again will not help."""


class LocalFileChanged(OSError):
    """A local input now shorter than it was when the job was planned."""


def read_file_range(path: str, size: int, start: int, end: int) -> bytes:
    """Bytes [start, end) of a local file planned at `size` bytes.

    A job reads each file as it was when the job was planned: a file that
    has grown since (a log being written) is read up to its planned size,
    what was appended is left for the next job (the line-aligned reader
    takes `size` as the file's end). Raises FileNotFoundError for a file
    that is gone, LocalFileChanged for one that is shorter (cut or
    replaced: its ranges no longer mean what the plan meant)."""
    if end <= start:
        return b""
    fd = os.open(path, os.O_RDONLY)
    try:
        actual = os.fstat(fd).st_size
        if actual < size:
            raise LocalFileChanged(
                f"{path}: {actual} bytes, {size} when the job was planned (cut or replaced "
                "since); run the job again"
            )
        parts = []
        at = start
        while at < end:
            part = os.pread(fd, end - at, at)
            if not part:
                raise LocalFileChanged(f"{path}: ends before byte {end}; run the job again")
            parts.append(part)
            at += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


class ChunkReader:
    """Reads a chunk's pieces with as few requests as it can.

    Small files packed side by side make a chunk of many adjacent pieces of
    one object: one ranged GET covers them all. `fetch(bucket, key, start,
    end)` returns bytes [start, end) of an object. A piece of a local file
    (`piece.path`) is read from disk with `read_local(path, size, start,
    end)`; a reader without one refuses it (ValueError).
    """

    def __init__(
        self,
        fetch: Callable[[str, str, int, int], bytes],
        pieces: Sequence[Piece],
        default_bucket: str,
        read_local: Callable[[str, int, int, int], bytes] | None = None,
    ) -> None:
        self.fetch = fetch
        self.read_local = read_local
        self.default_bucket = default_bucket
        self.spans: dict[tuple[str, str], tuple[int, bytes]] = {}
        groups: dict[tuple[str, str], list[Piece]] = {}
        for p in pieces:
            if not p.gzip and p.path is None:
                groups.setdefault((p.bucket or default_bucket, p.key), []).append(p)
        for (bucket, key), group in groups.items():
            if len(group) < 2:
                continue
            lo = min(p.base + max(p.start - 1, 0) for p in group)
            hi = max(min(p.base + p.size, p.base + p.end + OVERREAD_BYTES) for p in group)
            wanted = sum(p.end - p.start for p in group)
            # Only when the pieces sit close together, as packed files do.
            if hi - lo <= 2 * wanted + OVERREAD_BYTES * len(group):
                self.spans[(bucket, key)] = (lo, fetch(bucket, key, lo, hi))

    def read(self, piece: Piece) -> PieceData:
        if piece.path is not None:
            read_local, path = self.read_local, piece.path
            if read_local is None:
                raise ValueError(f"{path}: this reader reads no local files")

            def from_disk(key: str, start: int, end: int) -> bytes:
                return read_local(path, piece.size, start, end)

            return read_piece(from_disk, piece)
        bucket = piece.bucket or self.default_bucket

        def ranged(key: str, start: int, end: int) -> bytes:
            span = self.spans.get((bucket, key))
            if span is not None:
                lo, data = span
                if lo <= start and end <= lo + len(data):
                    return data[start - lo : end - lo]
            return self.fetch(bucket, key, start, end)

        return read_piece(ranged, piece)


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
