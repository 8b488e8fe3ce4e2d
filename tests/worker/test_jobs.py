"""The jobs' map, combine and reduce, run in memory by the inline runner."""

from __future__ import annotations

import json
import random
import statistics
import sys
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    reference_access_log,
    reference_grep,
    reference_inverted_index,
    reference_top_words,
    reference_wordcount,
)
from worker import records
from worker.jobs import Job, JobError, get_job, load_jobs, register, registry
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
    assert isinstance(job, Job)
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
    with pytest.raises(JobError, match=r"parameter .pattern. is required"):
        job.check_params({})
    with pytest.raises(JobError, match="invalid pattern"):
        job.check_params({"pattern": "(unclosed"})


def test_unknown_job_names_the_known_ones() -> None:
    with pytest.raises(JobError, match=r"unknown job 'nope'.*grep.*wordcount"):
        get_job("nope")


def test_a_new_job_is_three_functions_and_a_decorator() -> None:
    @register
    class LongestLine(Job):
        name = "test-longest-line"

        def mapper(self, line: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
            yield "longest", len(line)

        def reducer(self, key: str, values: Iterable[Any]) -> Any:
            return max(values)

    files = {"a": b"x\nxxxxx\nxx", "b": b"xxx\n"}
    assert run_inline("test-longest-line", files, chunk_size_bytes=3) == {"longest": 5}


# The contract: a reducer sees every value of its key --------------------------

USER_JOBS = Path(__file__).resolve().parents[1] / "user" / "statsjobs.py"


def numbers_corpus(seed: int, files: int = 4, lines: int = 120) -> dict[str, bytes]:
    rng = random.Random(seed)
    out = {}
    for f in range(files):
        rows = [f"k{rng.randint(0, 7)} {rng.randint(-50, 1000)}" for _ in range(lines)]
        rows.insert(rng.randint(0, len(rows)), "not a pair")
        out[f"n{f}.txt"] = ("\n".join(rows) + "\n").encode()
    return out


def numbers_by_key(files: dict[str, bytes]) -> dict[str, list[int]]:
    by_key: dict[str, list[int]] = {}
    for content in files.values():
        for line in content.decode().splitlines():
            key, _, value = line.partition(" ")
            if value.lstrip("-").isdigit():
                by_key.setdefault(key, []).append(int(value))
    return by_key


def stats_reference(job: str, files: dict[str, bytes], low: int = 0) -> dict[str, Any]:
    by_key = numbers_by_key(files)
    if job == "test-user-mean":
        return {k: statistics.mean(v) for k, v in sorted(by_key.items())}
    if job == "test-user-median":
        return {k: statistics.median(v) for k, v in sorted(by_key.items())}
    kept = {k: sorted({x for x in v if x >= low}) for k, v in sorted(by_key.items())}
    return {k: v for k, v in kept.items() if v}


def test_the_mean_of_the_issue_is_the_mean() -> None:
    load_jobs([str(USER_JOBS)], strict=True)
    files = {"a": b"x 1\nx 5\n", "b": b"x 2\n", "c": b"x 10\n"}
    assert run_inline("test-user-mean", files, chunk_size_bytes=4) == {"x": 4.5}


@pytest.mark.parametrize("job", ["test-user-mean", "test-user-median", "test-user-distinct"])
@pytest.mark.parametrize(("chunk_size", "partitions", "fan_in"), [(64, 3, 2), (1 << 20, 1, 64)])
def test_grouping_reducers_equal_the_reference(
    job: str, chunk_size: int, partitions: int, fan_in: int
) -> None:
    load_jobs([str(USER_JOBS)], strict=True)
    files = numbers_corpus(7)
    params = {"min": "100"} if job == "test-user-distinct" else {}
    got = run_inline(
        job,
        files,
        params=params,
        chunk_size_bytes=chunk_size,
        partitions=partitions,
        fan_in=fan_in,
    )
    assert got == stats_reference(job, files, low=100)
    assert list(got) == sorted(got), "results come sorted by key"


def test_a_merge_of_more_runs_than_its_fan_in_spills_and_keeps_every_record(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    runs = [
        records.to_bytes(sorted(((f"k{rng.randint(0, 40)}", i) for i in range(30)), key=str))
        for _ in range(23)
    ]
    expected = sorted(
        (tuple(r) for run in runs for r in records.decode([run])),
        key=lambda r: (r[0], str(r[1])),
    )
    merged = records.merge(
        [partial(records.bytes_blocks, run, 7) for run in runs], fan_in=3, spill_dir=str(tmp_path)
    )
    got = list(merged)
    assert [r[0] for r in got] == sorted(r[0] for r in got)
    assert sorted(got, key=lambda r: (r[0], str(r[1]))) == expected
    assert list(tmp_path.iterdir()) == [], "spilled runs are removed"


def test_a_key_that_is_not_a_string_is_refused() -> None:
    @register
    class IntKeys(Job):
        name = "test-int-keys"

        def mapper(self, line: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
            yield 1, line  # type: ignore[misc]

        def reducer(self, key: str, values: Iterator[Any]) -> Any:
            return list(values)

    with pytest.raises(JobError, match="keys must be strings"):
        run_inline("test-int-keys", {"a": b"x\n"})


# Parameters -------------------------------------------------------------------


def test_parameters_are_typed_defaulted_and_checked_by_name() -> None:
    job = get_job("top-words")
    assert job.check_params({}) == {"n": 10}
    assert job.check_params({"n": "3"}) == {"n": 3}
    with pytest.raises(JobError, match="parameter 'n': expected int, got 'many'"):
        job.check_params({"n": "many"})
    with pytest.raises(JobError, match="parameter 'n': must be 1 or more"):
        job.check_params({"n": "0"})
    with pytest.raises(JobError, match="unknown parameter 'm'"):
        job.check_params({"m": "1"})
    with pytest.raises(JobError, match=r"unknown parameter 'n' \(it takes no parameters\)"):
        get_job("wordcount").check_params({"n": "1"})


# The built-in jobs ------------------------------------------------------------


@pytest.mark.parametrize(("chunk_size", "partitions"), [(40, 3), (1 << 20, 1)])
def test_top_words_equals_the_reference(chunk_size: int, partitions: int) -> None:
    files = corpus(4)
    got = run_inline(
        "top-words", files, params={"n": 7}, chunk_size_bytes=chunk_size, partitions=partitions
    )
    assert got == reference_top_words(files, 7)
    assert list(got.items()) == list(reference_top_words(files, 7).items()), "ranked order"


@pytest.mark.parametrize(("chunk_size", "partitions"), [(40, 3), (1 << 20, 1)])
def test_inverted_index_equals_the_reference(chunk_size: int, partitions: int) -> None:
    files = corpus(5)
    got = run_inline("inverted-index", files, chunk_size_bytes=chunk_size, partitions=partitions)
    assert got == reference_inverted_index(files)


def access_log_corpus(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    paths = ["/", "/index.html", "/a/b.png", "/search?q=x", "/search?q=y&p=2", "/api/v1"]
    bad = [
        "",
        "garbage",
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.0" 2000 12',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0',  # no request: counts its 400
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "-" 4000 0',
        '1.2.3.4 - - 10/Oct/2000 "GET /x HTTP/1.0" 200 12',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.0" 200 12 "only-referer"',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.0" 200 12 "r" "cut \\"',
    ]
    files = {}
    for f in range(3):
        lines = []
        for _ in range(150):
            if rng.random() < 0.1:
                lines.append(rng.choice(bad))
                continue
            line = (
                f"10.0.0.{rng.randint(1, 9)} - {rng.choice(['-', 'frank'])} "
                f"[10/Oct/2000:13:55:{rng.randint(10, 59)} -0700] "
                f'"{rng.choice(["GET", "POST"])} {rng.choice(paths)} HTTP/1.1" '
                f"{rng.choice([200, 200, 304, 404, 500])} {rng.choice(['-', '512'])}"
            )
            if rng.random() < 0.5:
                agent = rng.choice(["Mozilla/5.0 (X11)", 'bot \\"quoted\\" 1.0', "ends \\\\"])
                line += f' "http://example.com/" "{agent}"'
            lines.append(line)
        files[f"access-{f}.log"] = ("\n".join(lines) + "\n").encode()
    return files


@pytest.mark.parametrize(("chunk_size", "partitions"), [(300, 2), (1 << 20, 1)])
def test_access_log_equals_the_reference(chunk_size: int, partitions: int) -> None:
    files = access_log_corpus(6)
    got = run_inline("access-log", files, chunk_size_bytes=chunk_size, partitions=partitions)
    expected = reference_access_log(files)
    assert got == expected
    assert expected["bad_lines"] > 0 and len(expected["path"]) >= 4


def test_a_worker_that_cannot_load_a_job_module_keeps_going_and_says_why() -> None:
    missing = "/nowhere/teamjobs.py"
    load_jobs([missing])  # as a worker does at start-up: no exception
    try:
        with pytest.raises(JobError, match=r"unknown job 'team-job'.*job module '/nowhere/"):
            get_job("team-job")
    finally:
        registry._FAILED.pop(missing, None)


@pytest.fixture
def job_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for job modules, off sys.path and sys.modules afterwards."""
    before = set(sys.modules)
    yield tmp_path
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", "")):
            del sys.modules[name]


def job_module(path: Path, job: str) -> Path:
    """A user's module with one job, wordcount under the name `job`."""
    path.write_text(
        "from worker.jobs import register\n"
        "from worker.jobs.wordcount import WordCount\n"
        "@register\n"
        "class Mine(WordCount):\n"
        f"    name = {job!r}\n"
    )
    return path


def test_a_job_module_cannot_take_the_name_of_another_job(job_dir: Path) -> None:
    module = job_module(job_dir / "clashjobs.py", "wordcount")
    with pytest.raises(JobError, match=r"'wordcount' of clashjobs.Mine is taken by worker.jobs.wo"):
        load_jobs([str(module)], strict=True)
    assert type(get_job("wordcount")).__module__ == "worker.jobs.wordcount"


def test_a_job_module_named_like_a_module_already_loaded_is_refused(job_dir: Path) -> None:
    module = job_module(job_dir / "json.py", "test-shadowed-json")
    with pytest.raises(JobError, match=r"the name 'json' is already taken by .*json.*rename"):
        load_jobs([str(module)], strict=True)


@pytest.mark.parametrize(
    "value", ['x\u2028"y\n', "\ud800", 1.5, True, None, [1, "a"], {"a": 1}, -3, 10**30]
)
def test_a_run_spells_every_value_as_json_does(value: Any) -> None:
    expected = json.dumps(["k\t", value], ensure_ascii=False, separators=(",", ":"))
    assert records.to_bytes([("k\t", value)]) == (expected + "\n").encode("utf-8", "surrogatepass")
    assert list(records.decode([records.to_bytes([("k\t", value)])])) == [["k\t", value]]


@pytest.mark.parametrize("layout", ["lines", "columns"])
@pytest.mark.parametrize("fan_in", [2, 64])
def test_a_summing_merge_equals_the_sum_of_its_runs_in_key_order(
    fan_in: int, layout: str, tmp_path: Path
) -> None:
    rng = random.Random(5)
    words = [f"w{i:04d}" for i in range(3000)] + ["straße", "λόγος", 'a"quote', ""]
    runs, expected = [], {}
    for _ in range(9):
        counts: dict[str, int] = {}
        for w in rng.sample(words, rng.randint(0, 2500)):
            counts[w] = rng.randint(1, 50)
            expected[w] = expected.get(w, 0) + counts[w]
        ordered = sorted(counts.items())
        run = (
            records.to_bytes(ordered)
            if layout == "lines"
            else b"".join(records.encode_columns(ordered, block_bytes=300))
        )
        # Small blocks: many rounds, and blocks of one run ending anywhere.
        runs.append(partial(records.bytes_blocks, run, 700))
    merged = list(records.merge(runs, fan_in=fan_in, spill_dir=str(tmp_path), sums=True))
    assert merged == sorted(expected.items())


def test_a_directory_of_job_modules_loads_each_of_them(job_dir: Path) -> None:
    """`--job-module DIR` of .py files without __init__.py (what `jobModules`
    takes) imported an empty namespace package: no job, no word why."""
    plain = job_dir / "plain_job_dir"
    plain.mkdir()
    job_module(plain / "first.py", "test-plain-dir-first")
    job_module(plain / "second.py", "test-plain-dir-second")
    load_jobs([str(plain)], strict=True)
    assert type(get_job("test-plain-dir-first")).__module__ == "plain_job_dir.first"
    assert type(get_job("test-plain-dir-second")).__module__ == "plain_job_dir.second"
    empty = job_dir / "no_modules_here"
    empty.mkdir()
    with pytest.raises(JobError, match=r"a directory without __init__\.py or \.py files"):
        load_jobs([str(empty)], strict=True)
    sys.modules.pop("plain_job_dir", None)
    sys.modules.pop("no_modules_here", None)
