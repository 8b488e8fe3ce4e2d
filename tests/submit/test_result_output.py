"""What `--top` shows and where `--output` writes, for every shape of
result a job can have: a bad `--output` is refused before anything is
queued, and `--top` never loses a result that is not a key -> number map."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from submit.cli import EXIT_USAGE, main
from submit.cli.render import print_top, summary_lines, throughput, top_entries, top_json
from submit.clients import Clients
from submit.errors import OperationalError
from submit.recovery import cancel
from submit.resources import Resources
from submit.tracking import fetch_result
from tests.conftest import reference_inverted_index
from tests.worker.test_local_inputs import new_job
from worker.jobs import get_job
from worker.jobs.base import Job, Summary


def run_local(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m submit run --local ARGS`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "submit", "run", "--local", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
    )


def test_top_of_counts_is_the_largest_values_ties_by_key() -> None:
    counts = {"a": 1, "b": 3, "c": 3, "d": 2}
    assert top_entries(counts, 3) == [["b", 3], ["c", 3], ["d", 2]]


def test_top_of_any_other_map_is_its_first_keys() -> None:
    index = {"apple": ["x.txt"], "pear": ["x.txt", "y.txt"], "plum": {"n": 1}}
    assert top_entries(index, 2) == [["apple", ["x.txt"]], ["pear", ["x.txt", "y.txt"]]]
    # A number among other values does not make it a ranking.
    assert top_entries({"a": [1], "b": 5}, 1) == [["a", [1]]]


def test_top_of_lists_shows_matches_or_numbered_items() -> None:
    matches = [{"input": "a.log", "line": 3, "text": "ERROR x"}] * 3
    assert top_entries(matches, 2) == [["a.log", 3, "ERROR x"]] * 2
    assert top_entries([[1, 2], "x", None], 5) == [[1, [1, 2]], [2, "x"], [3, None]]
    assert top_entries(7, 3) == [[7]]


def test_top_as_json_keeps_the_result_s_own_entries() -> None:
    """`--top N --json` of grep gave [input, line, text] lists, where the
    result and the README have {input, line, text} objects."""
    matches = [{"input": "a.log", "line": i, "text": "ERROR x"} for i in (1, 2, 3)]
    assert top_json(matches, 2) == matches[:2]
    assert top_json({"a": 1, "b": 3}, 1) == [["b", 3]]


def test_a_small_job_s_throughput_is_not_zero() -> None:
    """A 46-byte job read "0.0 MB/s"."""
    assert [throughput(r) for r in (25.8, 0.046, 0.000046, 0.0)] == [
        "25.8 MB/s",
        "46.0 kB/s",
        "46 B/s",
        "0.0 MB/s",
    ]


def test_printed_top_keeps_one_line_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    print_top({"k\nwith a newline": ["a"], "x" * 500: {"v": 1}}, 5)
    out = capsys.readouterr().out
    assert "first 2 keys" in out
    assert "k\\nwith a newline" in out
    assert "x" * 500 not in out and "…" in out
    assert '["a"]' in out


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "missing" / "out.json", "does not exist"),
        (lambda tmp: tmp / "in.txt" / "out.json", "is not a directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, says: str
) -> None:
    (tmp_path / "in.txt").write_text("hello world\n")
    output = make(tmp_path)  # type: ignore[operator]
    code = main(
        ["run", "--local", "--job", "wordcount", str(tmp_path / "in.txt"), "--output", str(output)]
    )
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert says in err and "starting the embedded AWS" not in err
    assert not (tmp_path / "missing").exists()
    code = main(["result", "20990101-000000-000000", "--output", str(output)])
    assert code == EXIT_USAGE and says in capsys.readouterr().err


def test_top_of_an_index_prints_its_first_words_and_writes_it_whole(tmp_path: Path) -> None:
    files = {
        str(tmp_path / "docs" / "a.txt"): b"apple pear\nplum\n",
        str(tmp_path / "docs" / "b.txt"): b"pear fig\n",
    }
    for name, content in files.items():
        Path(name).parent.mkdir(exist_ok=True)
        Path(name).write_bytes(content)
    out = tmp_path / "index.json"
    proc = run_local(
        "--job", "inverted-index", str(tmp_path / "docs"), "--top", "2", "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == reference_inverted_index(files)
    assert "--output FILE keeps it" not in proc.stderr
    assert "first 2 keys" in proc.stdout
    assert "apple" in proc.stdout and "fig" in proc.stdout and "plum" not in proc.stdout
    assert "summary    4 distinct words\n" in proc.stdout + proc.stderr


def test_inputs_whose_names_are_not_utf8_are_named_readably(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    odd = os.fsdecode(bytes(docs) + b"/caf\xe9 menu.txt")
    Path(odd).write_bytes(b"latin name word\n")
    (docs / "ok.txt").write_bytes(b"word ok\n")
    out = tmp_path / "matches.json"
    proc = run_local("--job", "grep", "--pattern", "word", str(docs), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == [
        {"input": f"{docs}/caf\\xe9 menu.txt", "line": 1, "text": "latin name word"},
        {"input": f"{docs}/ok.txt", "line": 1, "text": "word ok"},
    ]
    # The summary counts lines and inputs, and says which is which.
    assert "summary    2 matching lines, 2 inputs searched\n" in proc.stdout + proc.stderr


def test_a_one_shot_run_without_output_says_how_to_keep_the_result(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("one two two\n")
    proc = run_local("--job", "wordcount", str(tmp_path / "in.txt"), "--top", "1")
    assert proc.returncode == 0, proc.stderr
    assert "two" in proc.stdout
    assert "summary    3 words, 2 distinct words\ntop        two (2), one (1)\n" in (
        proc.stdout + proc.stderr
    )
    assert "the whole result stops with the embedded AWS: --output FILE keeps it" in proc.stderr


def test_a_filter_that_selects_nothing_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("words\n")
    proc = run_local("--job", "wordcount", str(tmp_path), "--include", "*.log", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    assert "warning: no input file that --include and --exclude select" in proc.stderr


def _summary_of(job: Job, records: list[tuple[str, Any]]) -> list[str]:
    """What `status` prints of a finished job whose one partition reduced
    to `records`, as the reducer builds it."""
    summary = Summary()
    for key, result in records:
        summary.add(job.weight(key, result))
    stored = json.loads(json.dumps(summary.to_dict()))
    return summary_lines(json.loads(json.dumps(job.merge_summaries([stored]))))


def test_the_summary_names_what_it_counts() -> None:
    """access-log's summary added status and path counts (each request
    counted twice) and ranked its internal keys ("path\\t/a"); top-words'
    said "total 1, distinct 1" of its one ranking."""
    access = get_job("access-log")
    reduced = [("bad_lines", 1), ("path\t/a", 2), ("path\t/b", 1), ("status\t200", 3)]
    assert _summary_of(access, reduced) == [
        "summary    3 requests to a path, 4 keys",
        "top        /a (2), /b (1)",
    ]
    assert _summary_of(get_job("top-words", {"n": 2}), [("top", [[5, "a"], [3, "b"]])]) == []
    # A key DynamoDB cannot hold (a lone surrogate) failed the reduce.
    assert _summary_of(get_job("wordcount"), [("\ud800x", 2)]) == [
        "summary    2 words, 1 distinct words",
        "top        \\ud800x (2)",
    ]
    # A summary stored by an earlier version has no names.
    assert summary_lines({"total": 1234, "distinct": 2, "top": [["x", 1000]]}) == [
        "summary    1,234 total, 2 distinct",
        "top        x (1000)",
    ]


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`run ... --json | head -c 100`: the rest of the output has nowhere to
    go; the command ends as a shell's pipeline expects (141), without a
    BrokenPipeError traceback."""
    words = tmp_path / "words.txt"
    words.write_text("\n".join(f"w{i} w{i * 7 % 5000}" for i in range(20_000)) + "\n")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "submit", "run", "--local", "--job", "wordcount"),
            *(str(words), "--top", "20000", "--json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=240) == 141, err
    assert "Traceback" not in err


def test_the_result_of_a_job_that_never_will_have_one_says_so(
    clients: Clients, resources: Resources
) -> None:
    """`result` of a cancelled job said it had "no result yet"."""
    new_job(clients, resources)
    with pytest.raises(OperationalError, match=r"is PENDING; it has no result yet \(`wait`"):
        fetch_result(clients, resources, "j")
    cancel(clients, resources, "j")
    with pytest.raises(OperationalError, match=r"is CANCELLED; it has no result$"):
        fetch_result(clients, resources, "j")
