"""The job contract: what a job must provide to run on Drover.

A job turns the pieces of one chunk into one JSON value per partition (map
and combine), turns the values of one partition from every chunk into that
partition's result (reduce), and merges the partitions' results into the
job's result. `KeyValueJob` derives all of that from three plain generator
functions over lines, in the manner of mrjob; a job may instead override
`map_chunk` with a faster kernel that gives the same result.
"""

from __future__ import annotations

import heapq
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from worker.reading import PieceData, split_lines

Params = dict[str, Any]


class JobError(ValueError):
    """A job that cannot run as asked: unknown name or invalid parameters."""


class Job(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""

    def check_params(self, params: Params) -> Params:
        """Validated, normalized parameters; raise JobError naming the problem."""
        if params:
            raise JobError(f"job {self.name!r} takes no parameters, got {sorted(params)}")
        return {}

    @abstractmethod
    def map_chunk(self, pieces: Iterable[PieceData], params: Params, partitions: int) -> list[Any]:
        """One JSON-serializable value per partition for the pieces of a chunk."""

    @abstractmethod
    def reduce_partition(self, outputs: Iterable[Any], params: Params) -> Any:
        """A partition's result from its map outputs, one per chunk."""

    @abstractmethod
    def merge_results(self, parts: Iterable[Any], params: Params) -> Any:
        """The job's result from its partitions' results, in partition order."""

    @abstractmethod
    def summarize(self, part: Any) -> dict[str, Any]:
        """A small summary of one partition's result: total, distinct, top."""

    def merge_summaries(self, summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
        total = distinct = 0
        top: list[tuple[Any, str]] = []
        for s in summaries:
            total += s.get("total", 0)
            distinct += s.get("distinct", 0)
            top.extend((count, key) for key, count in s.get("top", []))
        best = heapq.nsmallest(10, top, key=lambda t: (-t[0], t[1]))
        return {"total": total, "distinct": distinct, "top": [[k, c] for c, k in best]}


def partition_of(key: str, partitions: int) -> int:
    """A stable partition for a key: the same in every process (unlike hash())."""
    if partitions == 1:
        return 0
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def top_items(counts: dict[str, Any], n: int = 10) -> list[list[Any]]:
    """The n largest values, ties broken by key, as [key, value] pairs."""
    best = heapq.nsmallest(n, counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [[k, v] for k, v in best]


class KeyValueJob(Job):
    """A job written as mapper, combiner and reducer generator-style functions.

    `mapper` sees each line's text and yields (key, value) pairs; `combiner`
    folds a key's values within a chunk, `reducer` across chunks. Keys are
    strings; the result is an object key -> value.
    """

    @abstractmethod
    def mapper(self, line: str, params: Params) -> Iterator[tuple[str, Any]]: ...

    def combiner(self, key: str, values: Iterable[Any]) -> Any:
        return self.reducer(key, values)

    @abstractmethod
    def reducer(self, key: str, values: Iterable[Any]) -> Any: ...

    def map_chunk(self, pieces: Iterable[PieceData], params: Params, partitions: int) -> list[Any]:
        combined: dict[str, Any] = {}
        for piece in pieces:
            for raw in split_lines(piece.data):
                for key, value in self.mapper(raw.decode("utf-8", "replace"), params):
                    combined[key] = (
                        self.combiner(key, (combined[key], value)) if key in combined else value
                    )
        return self.partitioned(combined, partitions)

    @staticmethod
    def partitioned(combined: dict[str, Any], partitions: int) -> list[dict[str, Any]]:
        if partitions == 1:
            return [combined]
        out: list[dict[str, Any]] = [{} for _ in range(partitions)]
        for key, value in combined.items():
            out[partition_of(key, partitions)][key] = value
        return out

    def reduce_partition(self, outputs: Iterable[Any], params: Params) -> Any:
        merged: dict[str, Any] = {}
        for output in outputs:
            for key, value in output.items():
                merged[key] = self.reducer(key, (merged[key], value)) if key in merged else value
        return merged

    def merge_results(self, parts: Iterable[Any], params: Params) -> Any:
        result: dict[str, Any] = {}
        for part in parts:
            result.update(part)
        return dict(sorted(result.items()))

    def summarize(self, part: Any) -> dict[str, Any]:
        numeric = all(isinstance(v, int | float) for v in part.values())
        return {
            "total": sum(part.values()) if numeric else len(part),
            "distinct": len(part),
            "top": top_items(part) if numeric else [],
        }
