"""Run a job in memory, through the same reading, map, sorted runs, merge and
reduce code as the fleet, with no AWS at all: for unit tests of jobs and for
trying a new job on a few files."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from worker.jobs.base import Params
from worker.jobs.registry import get_job
from worker.messages import Piece
from worker.reading import PieceData, read_piece
from worker.records import MERGE_FAN_IN, bytes_blocks, merge, pack, to_bytes


def _pieces(files: Mapping[str, bytes], chunk_size_bytes: int) -> list[PieceData]:
    """Each file cut into byte ranges of `chunk_size_bytes`, read line-aligned."""
    out = []
    for index, (name, content) in enumerate(files.items()):

        def read(key: str, start: int, end: int, content: bytes = content) -> bytes:
            return content[start:end]

        for start in range(0, len(content), chunk_size_bytes):
            piece = Piece(
                key=name,
                name=name,
                index=index,
                base=0,
                size=len(content),
                start=start,
                end=min(len(content), start + chunk_size_bytes),
            )
            out.append(read_piece(read, piece))
    return out


def run_inline(
    job_name: str,
    files: Mapping[str, bytes],
    *,
    params: Params | None = None,
    chunk_size_bytes: int = 1 << 20,
    partitions: int = 1,
    fan_in: int = MERGE_FAN_IN,
) -> Any:
    """The job's result over `files` (name -> content, in input order), with
    each file cut into byte ranges of `chunk_size_bytes`, one chunk each. A
    later step maps the previous step's partition results, cut the same way."""
    checked = get_job(job_name).check_params(params or {})
    job = get_job(job_name, checked)
    inputs = dict(files)
    results: list[bytes] = []
    for step, step_partitions in enumerate(job.step_partitions(partitions)):
        outputs = [
            [pack(part) for part in job.map_chunk(step, [piece], step_partitions)]
            for piece in _pieces(inputs, chunk_size_bytes)
        ]
        results = []
        for r in range(step_partitions):
            sources = [partial(bytes_blocks, out[r]) for out in outputs]
            results.append(to_bytes(job.reduce_runs(step, sources, fan_in=fan_in)))
        inputs = {f"step {step + 1} part {r}": data for r, data in enumerate(results)}
    final = merge([partial(bytes_blocks, data) for data in results], fan_in=fan_in)
    return job.merge_results(final)
