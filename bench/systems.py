"""Everything the benchmark times besides Drover end to end: the reference
one-liners of DESIGN.md, Drover's kernel in one process, GNU coreutils and
grep, and mrjob. Each returns its result and the seconds it took, reading its
input from disk inside the timed part."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from submit.splitting import InputFile, Placed, plan_chunks
from worker import records
from worker.jobs import get_job
from worker.reading import read_piece

T = TypeVar("T")

BENCH_DIR = Path(__file__).resolve().parent
# Byte order and byte semantics for the GNU tools, and their fastest mode.
C_LOCALE = {**os.environ, "LC_ALL": "C"}
GNU_WORDCOUNT = "cat \"$@\" | tr -cs 'A-Za-z0-9_' '\\n' | tr A-Z a-z | sort | uniq -c"


@dataclass(frozen=True)
class Timed:
    seconds: float
    cpu_s: float  # this process's CPU, or the children's for a command


def timed(fn: Callable[[], T]) -> tuple[T, Timed]:
    wall, cpu = time.perf_counter(), time.process_time()
    children = os.times()
    result = fn()
    after = os.times()
    child_cpu = (after.children_user - children.children_user) + (
        after.children_system - children.children_system
    )
    return result, Timed(time.perf_counter() - wall, time.process_time() - cpu + child_cpu)


# (a) and the grep reference: straight from DESIGN.md ---------------------------


def reference_wordcount(files: Sequence[Path]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for path in files:
        total.update(re.findall(r"\w+", path.read_bytes().decode("utf-8", "replace").lower()))
    return dict(total)


def reference_grep(files: Sequence[Path], pattern: str) -> list[dict[str, Any]]:
    """Written from DESIGN.md's grep semantics, not from the job's code: a
    line ends at b"\\n" or the end of input; its text drops the b"\\n" and
    one b"\\r" just before it, decoded with errors="replace"."""
    search = re.compile(pattern).search
    out = []
    for path in files:
        data = path.read_bytes()
        lines = data.split(b"\n")
        terminated = len(lines) - 1
        if lines[-1] == b"":
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            if number <= terminated and raw.endswith(b"\r"):
                raw = raw[:-1]
            text = raw.decode("utf-8", "replace")
            if search(text):
                out.append({"input": str(path), "line": number, "text": text})
    return out


# (b) Drover's map kernel in one process ----------------------------------------


def drover_kernel(files: Sequence[Path], chunk_size_bytes: int) -> dict[str, int]:
    """The job's own map over the very chunks `submit` plans (small files
    share one), each piece read line-aligned as a worker reads it, then its
    reduce and merge."""
    contents = {str(p): p.read_bytes() for p in files}
    placed = [
        Placed(
            file=InputFile(name=name, size=len(data), path=Path(name)), index=i, key=name, base=0
        )
        for i, (name, data) in enumerate(contents.items())
    ]

    def read(key: str, start: int, end: int) -> bytes:
        return contents[key][start:end]

    job = get_job("wordcount")
    outputs = [
        records.pack(job.map_chunk(0, [read_piece(read, piece) for piece in pieces], 1)[0])
        for pieces in plan_chunks(placed, chunk_size_bytes)
    ]
    runs = [partial(records.bytes_blocks, out) for out in outputs]
    result: dict[str, int] = job.merge_results(job.reduce_runs(0, runs))
    return result


# (d) GNU coreutils on the ASCII copy --------------------------------------------


def gnu_wordcount(files: Sequence[Path]) -> dict[str, int]:
    proc = subprocess.run(
        ["bash", "-c", GNU_WORDCOUNT, "gnu-wordcount", *map(str, files)],
        env=C_LOCALE,
        capture_output=True,
        check=True,
    )
    counts: dict[str, int] = {}
    for line in proc.stdout.decode("ascii").splitlines():
        n, _, word = line.strip().partition(" ")
        if word:  # the empty word of a leading separator
            counts[word] = int(n)
    return counts


# (f) grep -E --------------------------------------------------------------------


def gnu_grep(files: Sequence[Path], pattern: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["grep", "-E", "-a", "-n", "-H", "-e", pattern, *map(str, files)],
        env=C_LOCALE,
        capture_output=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode(errors="replace"))
    out = []
    for line in proc.stdout.split(b"\n")[:-1]:
        name, number, text = line.split(b":", 2)
        if text.endswith(b"\r"):
            text = text[:-1]
        out.append(
            {"input": name.decode(), "line": int(number), "text": text.decode("utf-8", "replace")}
        )
    return out


# (e) mrjob ----------------------------------------------------------------------


def mrjob_wordcount(python: Path, runner: str, files: Sequence[Path], out: Path) -> dict[str, int]:
    """mrjob's word-frequency job with its `runner` ("inline" or "local",
    defaults otherwise), in the benchmark's own environment."""
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [
            str(python),
            str(BENCH_DIR / "mrjob_wordcount.py"),
            "-r",
            runner,
            "--output-dir",
            str(out),
            "--no-cat-output",
            *map(str, files),
        ],
        capture_output=True,
        check=True,
    )
    counts: dict[str, int] = {}
    for part in sorted(out.glob("part-*")):
        for line in part.read_bytes().splitlines():
            key, value = line.split(b"\t", 1)
            counts[json.loads(key)] = json.loads(value)
    return counts
