"""How the CLI shows things to a person: sizes, progress, tables, a status.

On a terminal, progress is a live bar and tables fit the window; piped or
redirected, progress becomes a plain line whenever the state or the tenth
of the work done changes, and tables are plain text. `--json` never comes
through here.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from submit.cost import LEAVES_OUT, JobCost
from submit.tracking import JobStatus
from worker.jobs import Job
from worker.jobs.registry import BUILTIN_MODULES
from worker.ledger import Phase

# Piped output is not cut to a width: a script or a file takes whole lines.
PIPED_WIDTH = 10_000


def console(stream: TextIO | None = None) -> Console:
    # Made per call, so the stream is the one in use now (tests swap it).
    out = stream or sys.stdout
    width = None if out.isatty() else PIPED_WIDTH
    return Console(file=out, highlight=False, soft_wrap=False, width=width)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def throughput(mb_s: float) -> str:
    """A rate in MB/s, or in kB/s or B/s where MB/s would read 0.0."""
    if mb_s >= 0.1 or mb_s <= 0:
        return f"{mb_s:.1f} MB/s"
    if mb_s >= 0.0001:
        return f"{mb_s * 1e3:.1f} kB/s"
    return f"{mb_s * 1e6:.0f} B/s"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> None:
    """Print rows under headers: fitted to a terminal, plain when piped."""
    out = console()
    t = Table(
        *headers,
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD if out.is_terminal else box.ASCII2,
        show_edge=False,
        pad_edge=False,
    )
    for row in rows:
        t.add_row(*(str(c) for c in row))
    out.print(t)


class JobProgress:
    """A job's progress on standard error: a live bar on a terminal; on a
    pipe or file, a line whenever the state or the tenth done changes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.console = console(stream or sys.stderr)
        self.live = self.console.is_terminal
        self.last_key: tuple[str, int] | None = None
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def _bar(self) -> tuple[Progress, TaskID]:
        if self.progress is None or self.task is None:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} {task.fields[what]}"),
                TextColumn("{task.fields[state]:<9}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[rate]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("job", total=1, what="", state="", rate="")
        return self.progress, self.task

    def update(self, status: JobStatus) -> None:
        if status.phase is Phase.REDUCE and status.partitions:
            done, total, what = status.reduced, status.partitions, "partitions reduced"
        else:
            done, total, what = status.done, status.expected, "chunks"
        if status.steps > 1:
            what = f"{what} (step {status.step + 1}/{status.steps})"
        rate = f"{throughput(status.throughput_mb_s):>10}"
        if self.live:
            progress, task = self._bar()
            progress.update(
                task,
                description=f"job {status.job_id}",
                completed=done,
                total=max(total, 1),
                what=what,
                state=status.state,
                rate=rate,
            )
            return
        frac = done / total if total else 1.0
        key = (f"{status.state} {status.step}", int(frac * 10))
        if key != self.last_key:
            self.last_key = key
            self.console.print(
                f"{done}/{total} {what}  {status.state:<9} {status.elapsed_s:6.1f}s  {rate}"
            )

    def upload(self, sent: int, total: int) -> None:
        self._stage("uploading", sent, total, f"bytes ({human_bytes(total)})")

    def queue(self, sent: int, total: int) -> None:
        self._stage("queueing", sent, total, "chunk messages")

    def _stage(self, description: str, done: int, total: int, what: str) -> None:
        """The bar of a stage before the job runs: uploading, queueing."""
        if self.live and total:
            progress, task = self._bar()
            progress.update(
                task,
                description=description,
                completed=done,
                total=total,
                what=what,
                state="",
                rate="",
            )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.task = None


def usd(amount: float) -> str:
    """Dollars to three significant digits, and at least cents."""
    if amount <= 0:
        return "$0.00"
    decimals = max(2, 2 - math.floor(math.log10(amount)))
    return f"${amount:,.{decimals}f}"


def cost_lines(c: JobCost) -> list[str]:
    where = "on AWS " if c.local else ""
    return [
        f"cost       {where}~{usd(c.fargate_usd)} on Fargate, ~{usd(c.spot_usd)} on Fargate Spot "
        f"({c.task_s:.1f} task-s at {c.vcpu:g} vCPU and {c.memory_gb:g} GB, public IPv4 and "
        "requests included)",
        f"           {c.basis}; it {LEAVES_OUT}",
    ]


def status_lines(s: JobStatus) -> list[str]:
    lines = [
        f"job        {s.job_id}",
        f"kind       {s.job}" + (f"  {s.params}" if s.params else ""),
        f"state      {s.state}",
    ]
    if s.steps > 1:
        lines.append(f"step       {s.step + 1} of {s.steps}")
    lines += [
        f"chunks     {s.done}/{s.expected} done, {s.failed} failed",
        f"reduce     {s.reduced}/{s.partitions} partitions",
        f"input      {human_bytes(s.input_bytes)}",
        f"elapsed    {s.elapsed_s:.1f}s  ({throughput(s.throughput_mb_s)})",
    ]
    if s.cost is not None:
        lines.extend(cost_lines(s.cost))
    if s.error:
        lines.append(f"error      {s.error}")
    if s.summary:
        lines.extend(summary_lines(s.summary))
    return lines


def _amount(value: Any) -> str:
    """A count with thousands separated; a fraction to six figures."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.6g}"
    return f"{int(value):,}" if _number(value) else str(value)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """A finished job's summary, in the words its job gives them (a summary
    without them, from a job that overrides `merge_summaries`: "total" and
    "distinct")."""
    names = summary.get("names", ["total", "distinct"])
    if not names:  # the job shows none
        return []
    total, distinct = summary.get("total"), summary.get("distinct")
    top = summary.get("top") or []
    if not top and total == distinct:  # results without weights: keys only
        lines = [f"summary    {_amount(distinct)} {names[1]}"]
    else:
        lines = [f"summary    {_amount(total)} {names[0]}, {_amount(distinct)} {names[1]}"]
        if top:
            lines.append("top        " + ", ".join(f"{k} ({v})" for k, v in top[:10]))
    return lines


def print_status(s: JobStatus) -> None:
    out = console()
    for line in status_lines(s):
        out.print(line, markup=False)
    if s.failed_chunks:
        table(
            [
                [c["chunk"], c.get("attempts"), c.get("worker"), c.get("last_error")]
                for c in s.failed_chunks
            ],
            ["chunk", "attempts", "worker", "last error"],
            title="failed chunks",
        )


def kind_text(job: type[Job]) -> str:
    """A job kind as `jobs --kinds` and `run --job NAME --help` show it."""
    steps = len(job().steps())
    lines = [f"{job.name}: {job.description or '(no description)'}"]
    if steps > 1:
        lines.append(f"  {steps} steps")
    if job.parameters:
        lines.append("  parameters (--param NAME=VALUE):")
        lines.extend(f"    {p.describe()}" for p in job.parameters)
    else:
        lines.append("  no parameters")
    if job.__module__ not in BUILTIN_MODULES:
        lines.append(f"  from {job.__module__}")
    return "\n".join(lines)


# Grep's records: what `--top` shows of a list result of that shape.
MATCH_FIELDS = ("input", "line", "text")
# A table cell longer than this is cut: one long key must not hide the rest.
CELL_CHARS = 120


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def top_entries(result: Any, n: int) -> list[list[Any]]:
    """The first n entries worth showing, whatever the job's result: of a
    key -> number result its largest values (ties by key); of any other
    key -> value result its first keys; of grep's matches their input, line
    and text; of any other list its first items, numbered."""
    if isinstance(result, dict):
        items = list(result.items())
        if all(_number(v) for _, v in items):
            items = sorted(items, key=lambda kv: (-kv[1], kv[0]))
        return [[k, v] for k, v in items[:n]]
    if isinstance(result, list):
        first = result[:n]
        if all(isinstance(r, dict) and set(MATCH_FIELDS) <= r.keys() for r in first):
            return [[r[f] for f in MATCH_FIELDS] for r in first]
        return [[i, r] for i, r in enumerate(first, 1)]
    return [[result]]


def top_json(result: Any, n: int) -> list[Any]:
    """`--top N --json`: the entries `top_entries` shows, in the result's own
    shape where it is a list (grep's matches stay objects {input, line,
    text}), as [key, value] pairs of a map."""
    if isinstance(result, list):
        return result[:n]
    return top_entries(result, n)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def print_top(result: Any, n: int) -> None:
    rows = [[_cell(c) for c in row] for row in top_entries(result, n)]
    if isinstance(result, dict):
        ranked = all(_number(v) for v in result.values())
        title = f"top {len(rows)}" if ranked else f"first {len(rows)} keys"
        table(rows, ["key", "value"], title=title)
    elif rows and len(rows[0]) == len(MATCH_FIELDS):
        table(rows, list(MATCH_FIELDS), title=f"first {len(rows)} matches")
    elif isinstance(result, list):
        table(rows, ["#", "item"], title=f"first {len(rows)} items")
    else:
        table(rows, ["result"])


def timeline_text(points: Sequence[tuple[float, int]]) -> str:
    if not points:
        return "no workers were started"
    return " -> ".join(f"{t:.0f}s:{n}" for t, n in points)


class Stopwatch:
    def __init__(self, since: float | None = None) -> None:
        """From now, or from `since` (a time.monotonic())."""
        self.marks: list[tuple[str, float]] = []
        self.last = time.monotonic() if since is None else since

    def mark(self, name: str) -> float:
        now = time.monotonic()
        took = now - self.last
        self.marks.append((name, took))
        self.last = now
        return took

    def total(self) -> float:
        return sum(took for _, took in self.marks)

    def text(self) -> str:
        return ", ".join(f"{name} {took:.1f}s" for name, took in self.marks)
