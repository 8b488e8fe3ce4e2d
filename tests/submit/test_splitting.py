"""Finding inputs and planning chunks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from submit.clients import Clients
from submit.splitting import (
    MAX_PIECES_PER_CHUNK,
    InputError,
    InputFile,
    Placed,
    discover,
    parse_size,
    plan_chunks,
)
from worker.messages import MapTask, to_json


def placed(sizes: list[int], names: list[str] | None = None) -> list[Placed]:
    names = names or [f"f{i}" for i in range(len(sizes))]
    out, base = [], 0
    for i, (size, name) in enumerate(zip(sizes, names, strict=True)):
        out.append(Placed(file=InputFile(name=name, size=size), index=i, key="pack", base=base))
        base += size
    return out


def covered(chunks: list[list]) -> dict[int, list[tuple[int, int]]]:
    ranges: dict[int, list[tuple[int, int]]] = {}
    for chunk in chunks:
        for p in chunk:
            ranges.setdefault(p.index, []).append((p.start, p.end))
    return ranges


def test_ranges_cover_each_file_exactly_once() -> None:
    sizes = [10, 0, 1000, 3, 250]
    chunks = plan_chunks(placed(sizes), chunk_size_bytes=64)
    for index, size in enumerate(sizes):
        ranges = sorted(covered(chunks).get(index, []))
        if size == 0:
            assert ranges == []
            continue
        assert ranges[0][0] == 0 and ranges[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(sum(p.end - p.start for p in c) <= 64 for c in chunks)


def test_small_files_share_a_chunk() -> None:
    chunks = plan_chunks(placed([5] * 20), chunk_size_bytes=50)
    assert [len(c) for c in chunks] == [10, 10]


def test_a_chunk_holds_a_bounded_number_of_pieces() -> None:
    chunks = plan_chunks(placed([1] * (MAX_PIECES_PER_CHUNK + 5)), chunk_size_bytes=1 << 20)
    assert [len(c) for c in chunks] == [MAX_PIECES_PER_CHUNK, 5]


def test_a_gzip_file_is_one_chunk_of_its_own() -> None:
    chunks = plan_chunks(placed([10, 500, 10], ["a", "b.gz", "c"]), chunk_size_bytes=100)
    assert [[(p.name, p.start, p.end, p.gzip) for p in c] for c in chunks] == [
        [("a", 0, 10, False)],
        [("b.gz", 0, 500, True)],
        [("c", 0, 10, False)],
    ]


def test_no_input_bytes_no_chunks() -> None:
    assert plan_chunks(placed([0, 0]), chunk_size_bytes=10) == []


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KB", 512 * 1024),
        ("64mb", 64 << 20),
        ("1048576", 1 << 20),
        ("1.5K", 1536),
        ("2 GiB", 2 << 30),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "abc", "", "-5MB", "12XB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_directories_are_recursed_in_order_with_filters(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "site-packages").mkdir()
    for rel in ["z.py", "a.txt", "b/m.py", "b/site-packages/x.py"]:
        (tmp_path / rel).write_text("x\n")
    files = discover([str(tmp_path)], include=["*.py"], exclude=["*/site-packages/*"])
    assert [Path(f.name).relative_to(tmp_path).as_posix() for f in files] == ["z.py", "b/m.py"]


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.txt: no such file or directory"):
        discover([str(tmp_path / "nope.txt")])


def test_s3_inputs_by_key_and_prefix(clients: Clients) -> None:
    clients.s3.create_bucket(Bucket="data")
    for key in ["logs/1.txt", "logs/2.txt", "other/3.txt"]:
        clients.s3.put_object(Bucket="data", Key=key, Body=b"hello\n")
    files = discover(["s3://data/logs/", "s3://data/other/3.txt"], s3=clients.s3)
    assert [(f.name, f.size) for f in files] == [
        ("s3://data/logs/1.txt", 6),
        ("s3://data/logs/2.txt", 6),
        ("s3://data/other/3.txt", 6),
    ]
    with pytest.raises(InputError, match="no such object or prefix"):
        discover(["s3://data/missing/"], s3=clients.s3)


def local_files(directory: str, count: int, size: int = 100) -> list[Placed]:
    return [
        Placed(
            file=InputFile(name=f"{directory}/f{i}.txt", size=size),
            index=i,
            key="",
            base=0,
            path=f"{directory}/f{i}.txt",
        )
        for i in range(count)
    ]


def test_small_local_files_fill_a_chunk_to_its_piece_limit() -> None:
    """A local file named by its path is written once in the message, its
    default fields left out: a chunk of small files holds as many as a
    chunk may read, not as many as three copies of each path allow."""
    chunks = plan_chunks(local_files("/home/someone/projects/corpus", 2500), 16 << 20)
    assert [len(c) for c in chunks] == [MAX_PIECES_PER_CHUNK, MAX_PIECES_PER_CHUNK, 500]


@pytest.mark.parametrize("segment", ["a-rather-long-directory-name", 'd\u00e9j\u00e0-"vu"'])
def test_a_chunk_of_many_long_paths_stays_small_enough_to_send_ten_at_once(
    segment: str,
) -> None:
    # Escaped characters (a quote, non-ASCII) take more bytes in the message.
    chunks = plan_chunks(local_files("/" + "/".join([segment] * 12), 2000), 16 << 20)
    assert sum(len(c) for c in chunks) == 2000
    for chunk in chunks:
        body = to_json(MapTask("j", 0, "wordcount", {}, 1, "bucket", tuple(chunk)))
        assert 10 * len(body.encode()) < 1 << 20


def test_an_exclude_that_names_a_directory_skips_all_under_it(
    tmp_path: Path, clients: Clients
) -> None:
    """`--exclude .git` took only files named .git and read the whole
    repository's objects; a directory's name or relative path now skips it."""
    for rel in ["a.txt", ".git/objects/ab/cd", "src/build/out.txt", "src/keep.txt", "docs/x.md"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")

    def names(exclude: list[str]) -> list[str]:
        files = discover([str(tmp_path)], exclude=exclude)
        return [Path(f.name).relative_to(tmp_path).as_posix() for f in files]

    assert names([".git", "build"]) == ["a.txt", "docs/x.md", "src/keep.txt"]
    assert names(["src/build", "*.md"]) == ["a.txt", ".git/objects/ab/cd", "src/keep.txt"]
    assert names(["src"]) == ["a.txt", ".git/objects/ab/cd", "docs/x.md"]
    # The same rule for S3 prefixes.
    clients.s3.create_bucket(Bucket="tree")
    for rel in ["a.txt", ".git/objects/ab/cd", "src/build/out.txt", "src/keep.txt"]:
        clients.s3.put_object(Bucket="tree", Key=f"in/{rel}", Body=b"x\n")
    got = discover(["s3://tree/in/"], s3=clients.s3, exclude=[".git", "build"])
    assert [f.name for f in got] == ["s3://tree/in/a.txt", "s3://tree/in/src/keep.txt"]
