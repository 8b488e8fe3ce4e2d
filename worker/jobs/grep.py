"""grep: every line a regular expression matches, with its input and line number.

A line is a run of bytes ended by b"\\n" or the end of the input, without the
b"\\n" and one b"\\r" before it, decoded as UTF-8 with errors="replace"; the
match is `re.search(pattern, text)`. A chunk does not know how many lines
precede it in its file, so the map output carries each piece's line count
and the reducer turns (piece, line within piece) into a line number.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from worker.jobs.base import Job, JobError, Params, top_items
from worker.jobs.registry import register
from worker.reading import PieceData


def _compile(params: Params) -> re.Pattern[str]:
    return re.compile(params["pattern"])


@register
class Grep(Job):
    name = "grep"
    description = "lines matching --pattern (Python re.search), with input and line number"

    def check_params(self, params: Params) -> Params:
        pattern = params.get("pattern")
        if not isinstance(pattern, str) or pattern == "":
            raise JobError("job 'grep' needs --pattern REGEX")
        unknown = sorted(set(params) - {"pattern"})
        if unknown:
            raise JobError(f"job 'grep' takes only a pattern, got {unknown}")
        try:
            re.compile(pattern)
        except re.error as e:
            raise JobError(f"invalid pattern {pattern!r}: {e}") from e
        return {"pattern": pattern}

    def map_chunk(self, pieces: Iterable[PieceData], params: Params, partitions: int) -> list[Any]:
        search = _compile(params).search
        out: list[dict[str, list[Any]]] = [{"pieces": [], "matches": []} for _ in range(partitions)]
        for piece in pieces:
            part = out[piece.index % partitions]
            text = piece.data.decode("utf-8", "replace")
            lines = text.split("\n")
            # The owned bytes end with a newline or at the end of the input.
            if lines[-1] == "":
                lines.pop()
            for i, line in enumerate(lines):
                if line.endswith("\r") and (i < len(lines) - 1 or text.endswith("\n")):
                    line = line[:-1]
                if search(line):
                    part["matches"].append([piece.index, piece.name, piece.start, i, line])
            part["pieces"].append([piece.index, piece.start, len(lines)])
        return out

    def reduce_partition(self, outputs: Iterable[Any], params: Params) -> Any:
        line_counts: dict[int, list[tuple[int, int]]] = {}
        matches: list[list[Any]] = []
        for output in outputs:
            for index, start, count in output["pieces"]:
                line_counts.setdefault(index, []).append((start, count))
            matches.extend(output["matches"])
        first_line: dict[tuple[int, int], int] = {}
        for index, ranges in line_counts.items():
            before = 0
            for start, count in sorted(ranges):
                first_line[(index, start)] = before
                before += count
        records = [
            [index, name, first_line[(index, start)] + i + 1, text]
            for index, name, start, i, text in matches
        ]
        records.sort(key=lambda r: (r[0], r[2]))
        return records

    def merge_results(self, parts: Iterable[Any], params: Params) -> Any:
        merged = heapq.merge(*parts, key=lambda r: (r[0], r[2]))
        return [{"input": name, "line": line, "text": text} for _, name, line, text in merged]

    def summarize(self, part: Any) -> dict[str, Any]:
        per_input = Counter(name for _, name, _, _ in part)
        return {"total": len(part), "distinct": len(per_input), "top": top_items(per_input)}
