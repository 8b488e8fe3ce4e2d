"""Jobs for the failure tests only; workers load them through
DROVER_JOB_MODULES=tests.reliability.jobs. Each counts words exactly as
wordcount (or top-words) does, so results compare with the reference."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from worker.jobs import Param, register
from worker.jobs.topwords import TopWords
from worker.jobs.wordcount import WordCount
from worker.reading import PieceData
from worker.records import Record

POISON = b"POISON"


@register
class PoisonWordCount(WordCount):
    """wordcount, but a chunk holding the word POISON fails while the file
    named by `marker` exists: a poison message whose cause can be removed."""

    name = "test-poison-wordcount"
    parameters = (Param("marker", str, "while this file exists, POISON fails a chunk"),)

    def map_chunk(self, step: int, pieces: Iterable[PieceData], partitions: int) -> list[Any]:
        read = list(pieces)
        if os.path.exists(self.params["marker"]) and any(POISON in p.data for p in read):
            raise RuntimeError("poisoned chunk")
        return super().map_chunk(step, read, partitions)


@register
class SlowWordCount(WordCount):
    """wordcount that takes `seconds` per chunk, and longer while the file
    named by `hold` (if given) exists: a chunk as long as a test needs."""

    name = "test-slow-wordcount"
    parameters = (
        Param("seconds", float, "sleep per chunk"),
        Param("hold", str, "while this file exists, sleep on", default=""),
    )

    def map_chunk(self, step: int, pieces: Iterable[PieceData], partitions: int) -> list[Any]:
        time.sleep(self.params["seconds"])
        hold = self.params["hold"]
        deadline = time.monotonic() + 300
        while hold and os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.1)
        return super().map_chunk(step, pieces, partitions)


@register
class SlowTopWords(TopWords):
    """top-words whose second step takes `seconds` per chunk: a step long
    enough to kill a worker in."""

    name = "test-slow-top-words"
    parameters = (*TopWords.parameters, Param("seconds", float, "sleep per chunk", default=0.0))

    def map_chunk(self, step: int, pieces: Iterable[PieceData], partitions: int) -> list[Any]:
        if step == 1:
            time.sleep(self.params["seconds"])
        return super().map_chunk(step, pieces, partitions)


@register
class HeldTopWords(TopWords):
    """top-words whose second step's map or reduce (`phase`) waits while the
    file named by `hold` exists: work in hand in a later step."""

    name = "test-held-top-words"
    parameters = (
        *TopWords.parameters,
        Param("hold", str, "while this file exists, the second step waits"),
        Param("phase", str, "the second step's map or reduce", default="map"),
    )

    def _wait(self, phase: str) -> None:
        deadline = time.monotonic() + 300
        while self.params["phase"] == phase and os.path.exists(self.params["hold"]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)

    def map_chunk(self, step: int, pieces: Iterable[PieceData], partitions: int) -> list[Any]:
        if step == 1:
            self._wait("map")
        return super().map_chunk(step, pieces, partitions)

    def reduce_partition(self, step: int, records: Iterable[Record]) -> Iterator[Record]:
        if step == 1:
            self._wait("reduce")
        yield from super().reduce_partition(step, records)
