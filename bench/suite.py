"""One benchmark run: every system on the same corpus, one after another,
each result checked, everything recorded in one JSON-ready dict."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import drover, env, scale, systems
from bench.corpus import Corpus, CorpusSpec, ascii_copy, generate, stdlib_corpus
from worker import settings as cfg

# Both grep -E and Python's re read this the same way: ASCII only, no anchors
# and no \b (whose meaning differs between GNU's C locale and Unicode).
GREP_PATTERN = "qu[a-z]*ze|zeze"
MRJOB_RUNNERS = ("inline", "local")
# The reducer-memory runs: a tenth-size corpus; the same text ten times over
# (ten times the input, the very same keys, ten times the chunks); and a
# tenth-size corpus of four times the vocabulary. Each tenth is cut into
# MEMORY_CHUNKS chunks, so the tenfold input makes ten times as many map
# outputs for a reducer to merge.
MEMORY_INPUT_FACTOR = 10
MEMORY_VOCABULARY_FACTOR = 4
MEMORY_CHUNKS = 2


@dataclass(frozen=True)
class Options:
    size_bytes: int
    seed: int
    out: Path
    chunk_size_bytes: int = 16 << 20
    files: int = 8
    mrjob: bool = True
    memory: bool = True
    small_files: bool = True
    scale_chunks: int = scale.SCALE_CHUNKS  # 0: no scale run


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _row(
    key: str,
    label: str,
    timing: systems.Timed | float,
    size: int,
    *,
    same: bool,
    check: str | None = None,
) -> dict[str, Any]:
    """A table row; `timing` is a float for a run timed from outside (no CPU)."""
    seconds, cpu_s = (
        (timing.seconds, timing.cpu_s) if isinstance(timing, systems.Timed) else (timing, None)
    )
    return {
        "key": key,
        "label": label,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "mb_s": size / 1e6 / seconds,
        "same": same,
        "check": check if check and same else ("identical" if same else "DIFFERS"),
    }


def _drover_summary(run: drover.DroverRun, settings: cfg.Settings, label: str) -> dict[str, Any]:
    cost = run.cost_per_gb(settings)
    return {
        "label": label,
        "job": run.job,
        "workers": run.workers,
        "chunks": run.chunks,
        "chunk_size_bytes": run.chunk_size_bytes,
        "input_bytes": run.input_bytes,
        "seconds": run.seconds,
        "command_s": run.command_s,
        "job_s": run.job_s,
        "created_s": run.created_s,
        "finished_s": run.finished_s,
        "submit_cpu_s": run.submit_cpu_s,
        "requests": dict(sorted(run.requests.items())),
        "requests_by_role": run.requests_by_role(),
        "requests_per_chunk": run.requests_per_chunk,
        "local_only_requests": run.local_only_requests,
        "map_peak_rss_mib": run.peak_rss_mib("map"),
        "reduce_peak_rss_mib": run.peak_rss_mib("reduce"),
        "submit_peak_rss_mib": run.peak_rss_mib("submit"),
        "worker_cpu_s": run.worker_cpu_s,
        "usd_per_gb_fargate": cost.fargate_usd,
        "usd_per_gb_spot": cost.spot_usd,
        "usd_per_gb_requests": cost.requests_usd,
        "distinct_keys": len(run.result) if run.job == "wordcount" else None,
    }


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    tools = {}
    for tool in ("tr", "sort", "grep"):
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
        tools[tool] = out.stdout.splitlines()[0] if out.stdout else "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "moto": version("moto"),
        "tools": tools,
    }


def run(options: Options) -> dict[str, Any]:
    settings = cfg.load()
    corpora = options.out / "corpus"
    runs = options.out / "runs"
    started = datetime.now(UTC)
    load_before = os.getloadavg()

    _log(f"corpus of {options.size_bytes / 2**20:g} MiB, seed {options.seed}")
    spec = CorpusSpec(seed=options.seed, size_bytes=options.size_bytes, files=options.files)
    corpus = generate(spec, corpora)
    files = list(corpus.files)
    size = corpus.size_bytes
    ascii_files = ascii_copy(corpus)
    rows: list[dict[str, Any]] = []
    grep_rows: list[dict[str, Any]] = []

    def step(name: str, fn: Callable[[], Any]) -> tuple[Any, systems.Timed]:
        _log(name)
        return systems.timed(fn)

    expected, ref_t = step("(a) reference one-liner", lambda: systems.reference_wordcount(files))
    rows.append(
        _row(
            "reference",
            "(a) reference one-liner, 1 process",
            ref_t,
            size,
            same=True,
            check="is the reference",
        )
    )
    kernel, kernel_t = step(
        "(b) Drover's kernel", lambda: systems.drover_kernel(files, options.chunk_size_bytes)
    )
    rows.append(
        _row("kernel", "(b) Drover map kernel, 1 process", kernel_t, size, same=kernel == expected)
    )

    drover_runs: dict[str, dict[str, Any]] = {}
    for workers in (1, 2):
        _log(f"(c) Drover local, {workers} worker(s)")
        r = drover.run(
            [corpus.directory],
            job="wordcount",
            workers=workers,
            chunk_size_bytes=options.chunk_size_bytes,
            work_dir=runs / f"wordcount-{workers}",
        )
        same = r.result == expected
        label = f"(c) Drover local, {workers} worker{'s' if workers > 1 else ''}, end to end"
        rows.append(_row(f"drover{workers}", label, r.seconds, size, same=same))
        drover_runs[f"wordcount-{workers}"] = _drover_summary(r, settings, label)

    ascii_expected = systems.drover_kernel(ascii_files, options.chunk_size_bytes)
    gnu, gnu_t = step("(d) GNU tr | sort | uniq -c", lambda: systems.gnu_wordcount(ascii_files))
    rows.append(
        _row(
            "gnu",
            "(d) GNU tr | sort | uniq -c, ASCII copy",
            gnu_t,
            size,
            same=gnu == ascii_expected,
            check="identical on the ASCII copy",
        )
    )

    if options.mrjob:
        python = env.python()
        for runner in MRJOB_RUNNERS:

            def mrjob(runner: str = runner) -> dict[str, int]:
                return systems.mrjob_wordcount(
                    python, runner, files, options.out / f"mrjob-{runner}"
                )

            got, t = step(f"(e) mrjob {runner} runner", mrjob)
            rows.append(
                _row(f"mrjob_{runner}", f"(e) mrjob {runner} runner", t, size, same=got == expected)
            )

    small_rows: list[dict[str, Any]] = []
    small_info: dict[str, Any] = {}
    if options.small_files:
        small_rows, small_info = _small_files(options, corpora, runs, settings, drover_runs)

    grep_expected, gref_t = step(
        "grep reference", lambda: systems.reference_grep(files, GREP_PATTERN)
    )
    grep_rows.append(
        _row(
            "grep_reference",
            "Python re.search reference, 1 process",
            gref_t,
            size,
            same=True,
            check=f"is the reference: {len(grep_expected)} lines",
        )
    )
    ggrep, ggrep_t = step("(f) grep -E", lambda: systems.gnu_grep(files, GREP_PATTERN))
    grep_rows.append(
        _row("gnu_grep", "(f) GNU grep -E", ggrep_t, size, same=ggrep == grep_expected)
    )
    _log("(f) Drover grep, 2 workers")
    # Named file by file, as the reference and grep -E name them.
    g = drover.run(
        files,
        job="grep",
        workers=2,
        chunk_size_bytes=options.chunk_size_bytes,
        work_dir=runs / "grep-2",
        pattern=GREP_PATTERN,
    )
    same = g.result == grep_expected
    grep_rows.append(
        _row("drover_grep", "(f) Drover grep, 2 workers, end to end", g.seconds, size, same=same)
    )
    drover_runs["grep-2"] = _drover_summary(g, settings, "(f) Drover grep, 2 workers")

    memory: list[dict[str, Any]] = []
    if options.memory:
        memory = _memory_runs(options, spec, corpora, runs, settings, drover_runs)

    scale_rows: list[dict[str, Any]] = []
    if options.scale_chunks:
        scale_rows = [_scale(options, corpora, runs, settings, drover_runs)]

    return {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "machine": _machine(),
        "settings": {
            "worker_cpu": settings.worker_cpu,
            "worker_memory_mib": settings.worker_memory_mib,
            "scale_in_idle_s": settings.scale_in_idle_s,
        },
        "corpus": _corpus_info(corpus),
        "chunk_size_bytes": options.chunk_size_bytes,
        "grep_pattern": GREP_PATTERN,
        "wordcount": rows,
        "grep": grep_rows,
        "drover": drover_runs,
        "memory": memory,
        "small_files": small_rows,
        "small_corpus": small_info,
        "scale": scale_rows,
    }


def _small_files(
    options: Options,
    corpora: Path,
    runs: Path,
    settings: cfg.Settings,
    drover_runs: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The installed standard library's text files, copied to some 150 MB in
    over 5,000 files: the reference, the kernel, and Drover with the default
    chunk size and the default fleet (a worker per core)."""
    _log("many small files: the standard library's text files")
    corpus = stdlib_corpus(corpora)
    files = list(corpus.files)
    size = corpus.size_bytes
    chunk = settings.default_chunk_size_bytes
    rows = []
    _log("many small files: reference one-liner")
    expected, ref_t = systems.timed(lambda: systems.reference_wordcount(files))
    rows.append(
        _row(
            "small_reference",
            "(a) reference one-liner, 1 process",
            ref_t,
            size,
            same=True,
            check="is the reference",
        )
    )
    _log("many small files: Drover's kernel")
    kernel, kernel_t = systems.timed(lambda: systems.drover_kernel(files, chunk))
    rows.append(
        _row(
            "small_kernel",
            "(b) Drover map kernel, 1 process",
            kernel_t,
            size,
            same=kernel == expected,
        )
    )
    _log("many small files: Drover local, default chunk size and fleet")
    r = drover.run(
        [corpus.directory],
        job="wordcount",
        workers=None,
        chunk_size_bytes=None,
        work_dir=runs / "small-files",
    )
    label = f"(c) Drover local, defaults ({r.workers} workers), end to end"
    rows.append(_row("small_drover", label, r.seconds, size, same=r.result == expected))
    drover_runs["small-files"] = _drover_summary(r, settings, f"many small files: {label}")
    info = {"files": len(files), "size_bytes": size, "copies": corpus.copies}
    return rows, info


def _corpus_info(corpus: Corpus) -> dict[str, Any]:
    return {
        "seed": corpus.spec.seed,
        "size_bytes": corpus.size_bytes,
        "files": len(corpus.files),
        "vocabulary_words": corpus.spec.vocabulary_words,
        "sha256": corpus.sha256,
    }


def _memory_runs(
    options: Options,
    spec: CorpusSpec,
    corpora: Path,
    runs: Path,
    settings: cfg.Settings,
    drover_runs: dict[str, Any],
) -> list[dict[str, Any]]:
    """The reducer's peak memory as the input grows tenfold with the same
    keys, and as the keys grow with the input's size kept."""
    tenth_bytes = max(1, options.size_bytes // MEMORY_INPUT_FACTOR)
    tenth = generate(CorpusSpec(seed=options.seed + 1, size_bytes=tenth_bytes, files=2), corpora)
    tenfold_dir = corpora / f"{tenth.spec.name}-x{MEMORY_INPUT_FACTOR}"
    tenfold_dir.mkdir(parents=True, exist_ok=True)
    tenfold = []
    for copy in range(MEMORY_INPUT_FACTOR):
        for f in tenth.files:
            target = tenfold_dir / f"{copy:02d}-{f.name}"
            if not target.exists():
                shutil.copyfile(f, target)
            tenfold.append(target)
    wide = generate(
        CorpusSpec(
            seed=options.seed + 1,
            size_bytes=tenth_bytes,
            files=2,
            vocabulary_words=tenth.spec.vocabulary_words * MEMORY_VOCABULARY_FACTOR,
        ),
        corpora,
    )
    chunk_size = max(1, -(-tenth.size_bytes // MEMORY_CHUNKS))
    cases = [
        ("a tenth-size corpus", tenth.spec.vocabulary_words, list(tenth.files)),
        (
            f"the same, {MEMORY_INPUT_FACTOR} times over",
            tenth.spec.vocabulary_words,
            tenfold,
        ),
        (
            f"a tenth-size corpus, {MEMORY_VOCABULARY_FACTOR}x the vocabulary",
            wide.spec.vocabulary_words,
            list(wide.files),
        ),
    ]
    memory: list[dict[str, Any]] = []
    for label, words, inputs in cases:
        _log(f"reducer memory: {label}")
        key = f"memory-{len(memory)}"
        r = drover.run(
            inputs, job="wordcount", workers=2, chunk_size_bytes=chunk_size, work_dir=runs / key
        )
        summary = _drover_summary(r, settings, f"reducer memory: {label}")
        drover_runs[key] = summary
        memory.append(
            {
                "label": label,
                "vocabulary_words": words,
                "input_bytes": summary["input_bytes"],
                "chunks": summary["chunks"],
                "distinct_keys": summary["distinct_keys"],
                "reduce_peak_rss_mib": summary["reduce_peak_rss_mib"],
                "map_peak_rss_mib": summary["map_peak_rss_mib"],
            }
        )
    return memory


def _scale(
    options: Options,
    corpora: Path,
    runs: Path,
    settings: cfg.Settings,
    drover_runs: dict[str, Any],
) -> dict[str, Any]:
    _log(f"scale: a job of {options.scale_chunks:,} chunks")
    r, same = scale.run(
        chunks=options.scale_chunks, seed=options.seed + 2, corpora=corpora, work_dir=runs / "scale"
    )
    row = scale.row(r, same=same)
    drover_runs["scale"] = _drover_summary(r, settings, f"scale: {row['label']}")
    return row
