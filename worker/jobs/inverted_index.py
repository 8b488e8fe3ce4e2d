"""inverted-index: for each word, the sorted distinct names of the inputs it
occurs in. Words are wordcount's: each `\\w+` of the lower-cased text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from worker.jobs.base import Job, Params
from worker.jobs.registry import register

WORD = re.compile(r"\w+")


def _union(values: Iterable[list[str]]) -> list[str]:
    return sorted({name for names in values for name in names})


@register
class InvertedIndex(Job):
    name = "inverted-index"
    description = "each word -> the sorted distinct input names it occurs in"
    summary_names = ("words", "distinct words")

    def mapper_init(self, input_name: str, params: Params) -> None:
        self.input_name = input_name

    def mapper(self, line: str, params: Params) -> Iterator[tuple[str, Any]]:
        names = [self.input_name]
        for word in set(WORD.findall(line.lower())):
            yield word, names

    def combiner(self, key: str, values: Iterable[Any]) -> Any:
        return _union(values)

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        return _union(values)
