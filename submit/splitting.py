"""Finding a job's inputs and cutting them into chunks of byte ranges.

Ranges need not fall on line boundaries: the worker reads each one
line-aligned (a line belongs to the range it starts in), so planning is pure
arithmetic on sizes and never reads the data. Many small files share a chunk;
a gzip file is one chunk of its own, since it cannot be read from the middle.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from submit.errors import UsageError
from worker.messages import Piece, piece_bytes

# The most files a chunk reads: a chunk of tiny files ends here before its
# bytes reach the chunk size.
MAX_PIECES_PER_CHUNK = 1000
# And the most bytes its pieces take in the message (each as it is written,
# worker.messages.piece_bytes): ten messages, a send batch, stay under SQS's
# 1 MiB a request.
MAX_CHUNK_MESSAGE_BYTES = 90_000


class InputError(UsageError):
    """An input that does not exist or cannot be read."""


@dataclass(frozen=True)
class InputFile:
    """One input file in job order: a local path, or an S3 object."""

    name: str
    size: int
    path: Path | None = None
    bucket: str | None = None
    key: str | None = None

    @property
    def gzip(self) -> bool:
        return self.name.endswith(".gz")


@dataclass(frozen=True)
class Placed:
    """Where an input file's bytes are: in S3, `key` from offset `base`; or,
    for a fleet on this machine, the local file `path` itself."""

    file: InputFile
    index: int
    key: str
    base: int
    bucket: str | None = None  # None: the job's own bucket
    path: str | None = None  # absolute; then key is "" and base 0


def parse_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InputError(f"{uri}: no bucket in S3 URI")
    return bucket, key


def _hit(relative: str, patterns: Sequence[str]) -> bool:
    """A pattern matches a path by its last name or its whole relative path."""
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in patterns)


def _excluded_directory(relative: str, exclude: Sequence[str]) -> bool:
    """An exclude pattern that names a directory on the path (`.git`,
    `build/tmp`, `*.egg-info`) skips everything under it, as .gitignore and
    rsync do."""
    parts = relative.split("/")[:-1]
    return any(_hit("/".join(parts[: i + 1]), exclude) for i in range(len(parts)))


def _matches(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if exclude and (_hit(relative, exclude) or _excluded_directory(relative, exclude)):
        return False
    return not include or _hit(relative, include)


def shown(path: str) -> str:
    """A local path as an input's name in results: itself, or, when its
    bytes are not UTF-8 (Python holds them as lone surrogates, which no
    JSON document, DynamoDB item or terminal takes), with each such byte
    written as \\xNN. The file is still read by its own path."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def discover(
    inputs: Sequence[str],
    *,
    s3: Any = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[InputFile]:
    """Every input file, in the order given (directories and prefixes sorted).

    Raises InputError for a path or S3 location that does not exist; an
    existing but empty directory or file is fine and contributes nothing.
    """
    files: list[InputFile] = []
    for spec in inputs:
        if spec.startswith("s3://"):
            files.extend(_discover_s3(spec, s3, include, exclude))
            continue
        path = Path(spec)
        if path.is_file():
            files.append(InputFile(name=shown(spec), size=path.stat().st_size, path=path))
        elif path.is_dir():
            files.extend(_walk(path, include, exclude))
        else:
            check_local(spec)
    return files


def check_local(spec: str) -> None:
    """Raises InputError for a local input that is not a file or directory:
    a mistake to report before any AWS is reached."""
    path = Path(spec)
    if path.is_file() or path.is_dir():
        return
    if path.exists():
        raise InputError(f"{spec}: not a regular file or directory")
    raise InputError(f"{spec}: no such file or directory")


def _walk(root: Path, include: Sequence[str], exclude: Sequence[str]) -> list[InputFile]:
    """The files under `root` that the patterns select, sorted by relative
    path component by component (os.walk's order, directories and files
    sorted). A directory that an exclude pattern names, or covers whole
    ("PATTERN/*"), is not entered: every path under it is excluded."""
    prune = [*exclude, *(p[:-2] for p in exclude if p.endswith("/*"))]
    found: list[InputFile] = []

    def visit(directory: Path, rel: str) -> None:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return  # as os.walk does: an unreadable directory holds nothing
        subdirs = []
        for entry in entries:
            sub = f"{rel}{entry.name}"
            # Not into linked directories, as os.walk does by default.
            if entry.is_dir(follow_symlinks=False):
                subdirs.append((entry, sub))
            elif entry.is_file() and _matches(sub, include, exclude):
                found.append(
                    InputFile(
                        name=shown(entry.path), size=entry.stat().st_size, path=Path(entry.path)
                    )
                )
        for entry, sub in subdirs:
            if not _hit(sub, prune):
                visit(Path(entry.path), sub + "/")

    visit(root, "")
    return found


def _discover_s3(
    uri: str, s3: Any, include: Sequence[str], exclude: Sequence[str]
) -> list[InputFile]:
    if s3 is None:
        raise InputError(f"{uri}: S3 inputs need AWS access")
    bucket, key = parse_s3_uri(uri)
    try:
        if key and not key.endswith("/"):
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                return [InputFile(name=uri, size=head["ContentLength"], bucket=bucket, key=key)]
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
                key += "/"
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(key) :]
                if obj["Key"].endswith("/") or not _matches(rel, include, exclude):
                    continue
                out.append(
                    InputFile(
                        name=f"s3://{bucket}/{obj['Key']}",
                        size=obj["Size"],
                        bucket=bucket,
                        key=obj["Key"],
                    )
                )
    except ClientError as e:
        raise InputError(f"{uri}: {e.response.get('Error', {}).get('Message', e)}") from e
    if not out:
        raise InputError(f"{uri}: no such object or prefix")
    return out


def plan_chunks(placed: Iterable[Placed], chunk_size_bytes: int) -> list[list[Piece]]:
    """Pieces grouped into chunks of about `chunk_size_bytes` each."""
    if chunk_size_bytes <= 0:
        raise UsageError("chunk size must be positive")
    chunks: list[list[Piece]] = []
    current: list[Piece] = []
    filled = 0
    encoded = 0

    def flush() -> None:
        nonlocal current, filled, encoded
        if current:
            chunks.append(current)
        current, filled, encoded = [], 0, 0

    for p in placed:
        f = p.file
        if f.size == 0:
            continue

        def piece(start: int, end: int, p: Placed = p, f: InputFile = f) -> Piece:
            return Piece(
                key=p.key,
                name=f.name,
                index=p.index,
                base=p.base,
                size=f.size,
                start=start,
                end=end,
                gzip=f.gzip,
                bucket=p.bucket,
                path=p.path,
            )

        if f.gzip:
            flush()
            chunks.append([piece(0, f.size)])
            continue
        pos = 0
        while pos < f.size:
            take = min(f.size - pos, chunk_size_bytes - filled)
            next_piece = piece(pos, pos + take)
            weight = piece_bytes(next_piece)
            if current and encoded + weight > MAX_CHUNK_MESSAGE_BYTES:
                flush()
                continue
            current.append(next_piece)
            filled += take
            encoded += weight
            pos += take
            if filled >= chunk_size_bytes or len(current) >= MAX_PIECES_PER_CHUNK:
                flush()
    flush()
    return chunks


SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
}


def parse_size(text: str) -> int:
    """'64MB', '512k', '1048576' -> bytes (binary units); ValueError if not a
    positive size."""
    s = text.strip().upper().replace(" ", "")
    digits = len(s) - len(s.lstrip("0123456789."))
    number, unit = s[:digits], s[digits:]
    if not number or unit not in SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (try 64MB, 512KB or a number of bytes)")
    value = int(float(number) * SIZE_UNITS[unit])
    if value <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return value
