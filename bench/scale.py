"""The scale run: one job of many small chunks (20,000 by default) end to
end on the default local fleet, as `python -m submit run --local` runs it.
It measures what grows with the chunk count rather than with the bytes:
queueing the messages (messages per second, from the CLI's first
SendMessageBatch to the answer of its last), the job, and the time to the
result on disk.

`python -m bench.scale [--chunks N]` runs it alone and prints its row;
`python -m bench` runs it with the rest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import drover, systems
from bench.corpus import CorpusSpec, generate

SCALE_CHUNKS = 20_000
QUICK_SCALE_CHUNKS = 2_000
CHUNK_BYTES = 1024
BENCH_DIR = Path(__file__).resolve().parent


def run(*, chunks: int, seed: int, corpora: Path, work_dir: Path) -> tuple[drover.DroverRun, bool]:
    """A wordcount of `chunks` chunks of CHUNK_BYTES over one generated file,
    and whether its result is the reference's."""
    corpus = generate(CorpusSpec(seed=seed, size_bytes=chunks * CHUNK_BYTES, files=1), corpora)
    r = drover.run(
        [corpus.directory],
        job="wordcount",
        workers=None,
        chunk_size_bytes=CHUNK_BYTES,
        work_dir=work_dir,
    )
    return r, r.result == systems.reference_wordcount(list(corpus.files))


def row(r: drover.DroverRun, *, same: bool) -> dict[str, Any]:
    enqueue_s = r.enqueue_s
    return {
        "label": f"{r.chunks:,} chunks of {CHUNK_BYTES} bytes, {r.workers} workers",
        "chunks": r.chunks,
        "input_bytes": r.input_bytes,
        "enqueue_s": enqueue_s,
        "enqueue_msgs_s": r.chunks / enqueue_s if enqueue_s else None,
        "job_s": r.job_s,
        "chunks_s": r.chunks / r.job_s if r.job_s else None,
        "seconds": r.seconds,
        "same": same,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.report import scale_table

    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--chunks", type=int, default=SCALE_CHUNKS, help=f"default {SCALE_CHUNKS}")
    parser.add_argument("--seed", type=int, default=3, help="corpus seed (default 3)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="default bench/out")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    r, same = run(
        chunks=args.chunks, seed=args.seed, corpora=out / "corpus", work_dir=out / "runs" / "scale"
    )
    print(scale_table([row(r, same=same)]))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
