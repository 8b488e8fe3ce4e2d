"""top-words: the n most frequent words, in two steps.

The first step counts words exactly as wordcount does (with its kernel);
the second maps each (word, count) to one key, keeps the n best of each
chunk in its combiner and of all of them in its single reducer. Ties go to
the word that sorts first.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from worker.jobs.base import Param, Params, Step
from worker.jobs.registry import register
from worker.jobs.wordcount import WordCount
from worker.records import Record

TOP = "top"


def _at_least_one(n: int) -> str | None:
    return None if n >= 1 else f"must be 1 or more, got {n}"


@register
class TopWords(WordCount):
    name = "top-words"
    description = "the n most frequent words (wordcount, then a one-partition top-n step)"
    parameters = (Param("n", int, "how many words", default=10, check=_at_least_one),)
    # Its last step has one key, the ranking, which the result shows whole.
    summary_names = None

    def steps(self) -> Sequence[Step]:
        count = super().steps()[0]
        return [
            count,
            Step(
                mapper=self.top_mapper,
                combiner=self.best,
                reducer=self.best,
                partitions=1,
            ),
        ]

    def top_mapper(self, word: str, count: int, params: Params) -> Iterator[tuple[str, Any]]:
        yield TOP, [[count, word]]

    def best(self, key: str, values: Iterable[Any]) -> Any:
        """The n best [count, word] of lists of them."""
        candidates = (pair for ranked in values for pair in ranked)
        return heapq.nsmallest(self.params["n"], candidates, key=lambda p: (-p[0], p[1]))

    def merge_results(self, records: Iterable[Record]) -> Any:
        """word -> count, most frequent first."""
        return {word: count for _, ranked in records for count, word in ranked}
