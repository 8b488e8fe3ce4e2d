"""Run a job in memory, through the same reading, map, reduce and merge code
as the fleet, with no AWS at all: for unit tests of jobs and for trying a new
job on a few files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.jobs.base import Params
from worker.jobs.registry import get_job
from worker.messages import Piece
from worker.reading import read_piece


def run_inline(
    job_name: str,
    files: Mapping[str, bytes],
    *,
    params: Params | None = None,
    chunk_size_bytes: int = 1 << 20,
    partitions: int = 1,
) -> Any:
    """The job's result over `files` (name -> content, in input order), with
    each file cut into byte ranges of `chunk_size_bytes`, one chunk each."""
    job = get_job(job_name)
    checked = job.check_params(params or {})
    map_outputs: list[list[Any]] = []
    for index, (name, content) in enumerate(files.items()):

        def read(key: str, start: int, end: int, content: bytes = content) -> bytes:
            return content[start:end]

        starts = range(0, len(content), chunk_size_bytes) if content else []
        for start in starts:
            piece = Piece(
                key=name,
                name=name,
                index=index,
                base=0,
                size=len(content),
                start=start,
                end=min(len(content), start + chunk_size_bytes),
            )
            map_outputs.append(job.map_chunk([read_piece(read, piece)], checked, partitions))
    parts = [
        job.reduce_partition((out[r] for out in map_outputs), checked) for r in range(partitions)
    ]
    return job.merge_results(parts, checked)
