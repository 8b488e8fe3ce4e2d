"""A user's job module, as a user writes one: loaded by path (never as part
of the tests package), inline and by real workers. Input lines are
"KEY NUMBER"; any other line is skipped."""

from collections.abc import Iterator
from typing import Any

from worker.jobs import Job, Param, register


def _pairs(line: str) -> Iterator[tuple[str, int]]:
    parts = line.split()
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        yield parts[0], int(parts[1])


@register
class Mean(Job):
    name = "test-user-mean"
    description = "the mean of each key's numbers"

    def mapper(self, line: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        yield from _pairs(line)

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        total = count = 0
        for v in values:
            total += v
            count += 1
        return total / count


@register
class Median(Job):
    name = "test-user-median"
    description = "the median of each key's numbers"

    def mapper(self, line: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        yield from _pairs(line)

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@register
class Distinct(Job):
    name = "test-user-distinct"
    description = "each key's distinct numbers at least --param min, sorted"
    parameters = (Param("min", int, "smallest number kept", default=0),)

    def mapper(self, line: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        for key, value in _pairs(line):
            if value >= params["min"]:
                yield key, [value]

    def combiner(self, key: str, values: Any) -> Any:
        return sorted({v for vs in values for v in vs})

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        return sorted({v for vs in values for v in vs})
