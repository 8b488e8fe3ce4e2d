"""Jobs for the failure tests only; workers load them through
DROVER_JOB_MODULES=tests.reliability.jobs. Both count words exactly as
wordcount does, so results compare with the reference."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from worker.jobs import JobError, register
from worker.jobs.base import Params
from worker.jobs.wordcount import WordCount
from worker.reading import PieceData

POISON = b"POISON"


@register
class PoisonWordCount(WordCount):
    """wordcount, but a chunk holding the word POISON fails while the file
    named by `marker` exists: a poison message whose cause can be removed."""

    name = "test-poison-wordcount"

    def check_params(self, params: Params) -> Params:
        if set(params) != {"marker"} or not isinstance(params["marker"], str):
            raise JobError("test-poison-wordcount takes one parameter, marker")
        return dict(params)

    def map_chunk(self, pieces: Iterable[PieceData], params: Params, partitions: int) -> list[Any]:
        read = list(pieces)
        if os.path.exists(params["marker"]) and any(POISON in p.data for p in read):
            raise RuntimeError("poisoned chunk")
        return super().map_chunk(read, {}, partitions)


@register
class SlowWordCount(WordCount):
    """wordcount that takes `seconds` per chunk, and longer while the file
    named by `hold` (if given) exists: a chunk as long as a test needs."""

    name = "test-slow-wordcount"

    def check_params(self, params: Params) -> Params:
        if not set(params) <= {"seconds", "hold"} or "seconds" not in params:
            raise JobError("test-slow-wordcount takes seconds and, optionally, hold")
        return dict(params)

    def map_chunk(self, pieces: Iterable[PieceData], params: Params, partitions: int) -> list[Any]:
        time.sleep(float(params["seconds"]))
        hold = params.get("hold")
        deadline = time.monotonic() + 300
        while hold and os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.1)
        return super().map_chunk(pieces, {}, partitions)
