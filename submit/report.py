"""How the CLI shows things to a person: sizes, a progress bar, tables."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from submit.jobs import JobStatus


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class ProgressBar:
    """One line redrawn in place on a terminal; on a pipe or file, a line
    whenever the state or the tenth of work done changes."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.last_key: tuple[str, int] | None = None
        self.drawn = False

    def update(self, status: JobStatus) -> None:
        if status.state in ("REDUCING", "SUCCEEDED") and status.partitions:
            done, total, what = status.reduced, status.partitions, "partitions reduced"
        else:
            done, total, what = status.done, status.expected, "chunks"
        frac = done / total if total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (
            f"[{bar}] {done}/{total} {what}  {status.state:<9} "
            f"{status.elapsed_s:6.1f}s  {status.throughput_mb_s:6.1f} MB/s"
        )
        if self.tty:
            self.stream.write("\r" + line)
            self.drawn = True
        else:
            key = (status.state, int(frac * 10))
            if key != self.last_key:
                self.stream.write(line + "\n")
                self.last_key = key
        self.stream.flush()

    def upload(self, sent: int, total: int) -> None:
        if self.tty and total:
            self.stream.write(f"\ruploading {human_bytes(sent)} of {human_bytes(total)}")
            self.drawn = True
            self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def status_text(s: JobStatus) -> str:
    lines = [
        f"job        {s.job_id}",
        f"kind       {s.job}" + (f"  {s.params}" if s.params else ""),
        f"state      {s.state}",
        f"chunks     {s.done}/{s.expected} done, {s.failed} failed",
        f"reduce     {s.reduced}/{s.partitions} partitions",
        f"input      {human_bytes(s.input_bytes)}",
        f"elapsed    {s.elapsed_s:.1f}s  ({s.throughput_mb_s:.1f} MB/s)",
    ]
    if s.error:
        lines.append(f"error      {s.error}")
    if s.summary:
        lines.append(
            f"summary    total {s.summary.get('total')}, distinct {s.summary.get('distinct')}"
        )
        top = s.summary.get("top") or []
        if top:
            lines.append("top        " + ", ".join(f"{k} ({v})" for k, v in top[:10]))
    if s.failed_chunks:
        lines.append("failed chunks:")
        lines.append(
            table(
                [
                    [c["chunk"], c.get("attempts"), c.get("worker"), c.get("last_error")]
                    for c in s.failed_chunks
                ],
                ["chunk", "attempts", "worker", "last error"],
            )
        )
    return "\n".join(lines)


def top_entries(result: Any, n: int) -> list[list[Any]]:
    """The first n entries worth showing: the most frequent keys of a
    key -> number result, or the first records of a list result."""
    if isinstance(result, dict):
        items = sorted(result.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [[k, v] for k, v in items]
    return [[r.get("input"), r.get("line"), r.get("text")] for r in result[:n]]


def timeline_text(points: Sequence[tuple[float, int]]) -> str:
    if not points:
        return "no workers were started"
    return " -> ".join(f"{t:.0f}s:{n}" for t, n in points)


class Stopwatch:
    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []
        self.last = time.monotonic()

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
