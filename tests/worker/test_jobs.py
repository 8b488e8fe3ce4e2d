"""The jobs' map, combine and reduce, run in memory by the inline runner."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from tests.conftest import reference_grep, reference_wordcount
from worker.jobs import JobError, KeyValueJob, get_job, register
from worker.jobs.inline import run_inline
from worker.jobs.wordcount import count_words

WORDS = [
    "Stra\u00dfe",
    "\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
    "\u039f\u0394\u039f\u03a3",
    "na\u00efve",
    "hello",
    "World",
    "x_y",
    "42",
    "\ufb01ne",
    "\u0130stanbul",
    "don't",
    "a-b",
    "\u65e5\u672c\u8a9e",
    "ERROR",
    "warn:",
    "e\u0301t\u00e9",
]


def corpus(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {}
    for f in range(4):
        lines = []
        for _ in range(rng.randint(0, 200)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(0, 9))]
            lines.append(" ".join(words) + rng.choice(["", "\r", " ,.;", "\t"]))
        content = "\n".join(lines).encode()
        if f == 1:
            content += b"\n\xff\xfe broken \xc3 utf8"
        if f == 2:
            content += b"\n"
        files[f"dir/file{f}.txt"] = content
    files["empty.txt"] = b""
    return files


@pytest.mark.parametrize("chunk_size", [1, 13, 256, 1 << 20])
@pytest.mark.parametrize("partitions", [1, 3])
def test_wordcount_equals_the_reference(chunk_size: int, partitions: int) -> None:
    files = corpus(1)
    got = run_inline("wordcount", files, chunk_size_bytes=chunk_size, partitions=partitions)
    assert got == reference_wordcount(files)


@pytest.mark.parametrize("chunk_size", [1, 13, 256, 1 << 20])
@pytest.mark.parametrize("partitions", [1, 2])
def test_grep_equals_the_reference(chunk_size: int, partitions: int) -> None:
    files = corpus(2)
    pattern = r"(?i)hello\s+w|\d{2}|\r$|^$"
    got = run_inline(
        "grep",
        files,
        params={"pattern": pattern},
        chunk_size_bytes=chunk_size,
        partitions=partitions,
    )
    assert got == reference_grep(files, pattern)
    assert got, "the pattern should match something in this corpus"


def test_fast_kernel_matches_the_line_by_line_mapper() -> None:
    text = "\n".join(" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS)))
    job = get_job("wordcount")
    assert isinstance(job, KeyValueJob)
    slow: dict[str, int] = {}
    for line in text.split("\n"):
        for word, one in job.mapper(line, {}):
            slow[word] = slow.get(word, 0) + one
    assert dict(count_words(text)) == slow


def test_final_sigma_is_lowered_as_in_the_reference() -> None:
    files = {"f": "\u039f\u0394\u039f\u03a3 \u03a3\u039f\u03a3\n".encode()}
    assert run_inline("wordcount", files) == reference_wordcount(files)


def test_grep_needs_a_valid_pattern() -> None:
    job = get_job("grep")
    with pytest.raises(JobError, match="needs --pattern"):
        job.check_params({})
    with pytest.raises(JobError, match="invalid pattern"):
        job.check_params({"pattern": "(unclosed"})


def test_unknown_job_names_the_known_ones() -> None:
    with pytest.raises(JobError, match=r"unknown job 'nope'.*grep.*wordcount"):
        get_job("nope")


def test_a_new_job_is_three_functions_and_a_decorator() -> None:
    @register
    class LongestLine(KeyValueJob):
        name = "test-longest-line"

        def mapper(self, line: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
            yield "longest", len(line)

        def reducer(self, key: str, values: Iterable[Any]) -> Any:
            return max(values)

    files = {"a": b"x\nxxxxx\nxx", "b": b"xxx\n"}
    assert run_inline("test-longest-line", files, chunk_size_bytes=3) == {"longest": 5}
