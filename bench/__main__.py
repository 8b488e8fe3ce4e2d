"""`python -m bench`: Drover beside its peers on one generated corpus.

Writes results.json, results.md and mbps.png to --out and prints the
Markdown; --publish also copies results.md and mbps.png to a tracked folder
for the README. See README.md, "Benchmarks".
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench import env, report, scale, suite

BENCH_DIR = Path(__file__).resolve().parent
QUICK_SIZE_MB = 16
DEFAULT_SIZE_MB = 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a {QUICK_SIZE_MB} MiB corpus unless --size-mb says otherwise",
    )
    parser.add_argument(
        "--size-mb", type=float, help=f"corpus size in MiB (default {DEFAULT_SIZE_MB})"
    )
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument(
        "--chunk-size-mb", type=float, default=16, help="Drover's chunk size in MiB (default 16)"
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR / "out", help="output folder (default bench/out)"
    )
    parser.add_argument(
        "--publish", type=Path, metavar="DIR", help="also copy results.md and mbps.png here"
    )
    parser.add_argument(
        "--no-mrjob", action="store_true", help="skip mrjob (it needs bench/.venv from PyPI)"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (needs bench/.venv)")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the three reducer-memory runs"
    )
    parser.add_argument(
        "--no-small-files",
        action="store_true",
        help="skip the many-small-files corpus (the standard library's text, ~150 MB)",
    )
    parser.add_argument(
        "--scale-chunks",
        type=int,
        help=f"chunks of the scale run (default {scale.SCALE_CHUNKS}, "
        f"{scale.QUICK_SCALE_CHUNKS} with --quick; 0 skips it)",
    )
    args = parser.parse_args(argv)
    size_mb = args.size_mb or (QUICK_SIZE_MB if args.quick else DEFAULT_SIZE_MB)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = suite.run(
        suite.Options(
            size_bytes=int(size_mb * 2**20),
            seed=args.seed,
            out=out,
            chunk_size_bytes=int(args.chunk_size_mb * 2**20),
            mrjob=not args.no_mrjob,
            memory=not args.no_memory,
            small_files=not args.no_small_files,
            scale_chunks=(
                args.scale_chunks
                if args.scale_chunks is not None
                else scale.QUICK_SCALE_CHUNKS
                if args.quick
                else scale.SCALE_CHUNKS
            ),
        )
    )
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report.markdown(results)
    (out / "results.md").write_text(text)
    artifacts = [out / "results.md"]
    if not args.no_plot:
        subprocess.run(
            [
                str(env.python()),
                str(BENCH_DIR / "plot.py"),
                str(out / "results.json"),
                str(out / "mbps.png"),
            ],
            check=True,
        )
        artifacts.append(out / "mbps.png")
    print(text)
    checked = results["wordcount"] + results["grep"] + results["small_files"] + results["scale"]
    failed = [r["label"] for r in checked if not r["same"]]
    if failed:
        # Nor is such a run published.
        print("bench: results differ from the reference: " + ", ".join(failed), file=sys.stderr)
        return 1
    if args.publish and args.quick:
        print("bench: a quick run is not published", file=sys.stderr)
    elif args.publish:
        args.publish.mkdir(parents=True, exist_ok=True)
        for path in artifacts:
            shutil.copyfile(path, args.publish / path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
