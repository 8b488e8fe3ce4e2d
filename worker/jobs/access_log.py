"""access-log: requests counted by HTTP status and by path, from web server
logs in the common or combined log format:

    host ident user [time] "METHOD /path?query PROTOCOL" status bytes ["referer" "agent"]

A quoted field may hold a quote escaped with a backslash (\\"), as Apache
writes one. The path is the request target without its query string; a
request logged as "-" (a connection that sent none) counts by its status
only. A line of any other shape (a blank line included) is counted as bad, never an
error. The result is {"status": {code: n}, "path": {path: n}, "bad_lines": n}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from worker.jobs.base import Job, Params
from worker.jobs.registry import register
from worker.records import Record

# A quoted field: a backslash escapes the next character, as Apache writes
# a quote inside a request, a referer or a user agent (\").
QUOTED = r'"(?:[^"\\]|\\.)*"'
LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?:\d+|-)'
    rf"(?: {QUOTED} {QUOTED})?\s*$"
)
REQUEST = re.compile(r"^[A-Z]+ (?P<target>\S+)(?: \S+)?$")

# What nginx and Apache log for a connection that sent no request line (a
# 400 or 408): its status counts, it has no path.
NO_REQUEST = "-"
STATUS = "status\t"
PATH = "path\t"
BAD = "bad_lines"


@register
class AccessLog(Job):
    name = "access-log"
    description = "requests by HTTP status and by path, from common or combined log lines"

    def mapper(self, line: str, params: Params) -> Iterator[tuple[str, Any]]:
        m = LINE.match(line)
        if m is not None and m["request"] == NO_REQUEST:
            yield STATUS + m["status"], 1  # answered, with no path to count
            return
        request = REQUEST.match(m["request"]) if m else None
        if m is None or request is None:
            yield BAD, 1
            return
        yield STATUS + m["status"], 1
        yield PATH + request["target"].split("?", 1)[0], 1

    summary_names = ("requests to a path", "keys")

    def weight(self, key: str, result: Any) -> tuple[str, float] | None:
        """Requests by path: each well-formed line has one, so the total is
        the requests read and the heaviest are the busiest paths. A status
        or the bad lines weigh nothing (counted, they would count a request
        twice)."""
        if key.startswith(PATH):
            return key[len(PATH) :], result
        return key, 0

    def combiner(self, key: str, values: Iterable[Any]) -> Any:
        return sum(values)

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        return sum(values)

    def merge_results(self, records: Iterable[Record]) -> Any:
        out: dict[str, Any] = {"status": {}, "path": {}, BAD: 0}
        for key, n in records:
            if key == BAD:
                out[BAD] = n
            else:
                kind, value = key.split("\t", 1)
                out[kind][value] = n
        return out
