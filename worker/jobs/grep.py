"""grep: every line a regular expression matches, with its input and line number.

A line is a run of bytes ended by b"\\n" or the end of the input, without the
b"\\n" and one b"\\r" before it, decoded as UTF-8 with errors="replace"; the
match is `re.search(pattern, text)`. A chunk does not know how many lines
precede it in its file, so the map keys each piece by its input's position
(so that results come in input order) and gives its start, its line count
and its matches; the reducer of an input puts its pieces in order and turns
(piece, line within piece) into line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from worker.jobs.base import Job, Param
from worker.jobs.registry import register
from worker.reading import PieceData
from worker.records import Record


def _valid_pattern(pattern: str) -> str | None:
    if pattern == "":
        return "needs a regular expression (--pattern REGEX)"
    try:
        re.compile(pattern)
    except re.error as e:
        return f"invalid pattern {pattern!r}: {e}"
    return None


def _key(index: int) -> str:
    # Zero-padded, so that keys sort in input order.
    return f"{index:010d}"


@register
class Grep(Job):
    name = "grep"
    description = "lines matching a Python regular expression, with input and line number"
    parameters = (
        Param(
            "pattern",
            str,
            "Python regular expression, matched with re.search (alias: --pattern)",
            check=_valid_pattern,
        ),
    )

    def map_chunk(
        self, step: int, pieces: Iterable[PieceData], partitions: int
    ) -> list[list[Record]]:
        search = re.compile(self.params["pattern"]).search
        out: list[list[Record]] = [[] for _ in range(partitions)]
        for piece in pieces:
            text = piece.data.decode("utf-8", "replace")
            lines = text.split("\n")
            # The owned bytes end with a newline or at the end of the input.
            if lines[-1] == "":
                lines.pop()
            matches = []
            for i, line in enumerate(lines):
                if line.endswith("\r") and (i < len(lines) - 1 or text.endswith("\n")):
                    line = line[:-1]
                if search(line):
                    matches.append([i, line])
            out[piece.index % partitions].append(
                (_key(piece.index), [piece.name, piece.start, len(lines), matches])
            )
        for part in out:
            part.sort(key=lambda r: r[0])
        return out

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        """One input's matches as [name, [[line number, text], ...]]."""
        pieces = sorted(values, key=lambda v: v[1])
        before = 0
        numbered: list[list[Any]] = []
        for _, _, count, matches in pieces:
            numbered.extend([before + i + 1, text] for i, text in matches)
            before += count
        return [pieces[0][0], numbered]

    summary_names = ("matching lines", "inputs searched")

    def weight(self, key: str, result: Any) -> tuple[str, float] | None:
        name, matches = result
        return name, len(matches)

    def merge_results(self, records: Iterable[Record]) -> Any:
        return [
            {"input": name, "line": line, "text": text}
            for _, (name, matches) in records
            for line, text in matches
        ]
