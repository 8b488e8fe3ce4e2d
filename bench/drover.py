"""Drover end to end in local mode, exactly as a user runs it: `python -m
submit run --local ... --output FILE`, from the command's start to the result
on disk (the output file's modification time), with every process's AWS
requests, CPU seconds and peak memory from DROVER_REQUEST_LOG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import pricing
from bench.usage import ENV_REQUEST_LOG, LOCAL_FLEET_PREFIX
from worker import settings as cfg

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Requests the submitting process makes only in local mode: creating the
# bucket, table and queues that the stack creates, and the local fleet's
# queue-depth polling, which stands in for CloudWatch alarms (counted apart,
# bench.usage). The CLI's own reads of queue depth (the dead-letter queues,
# while it follows a job) are counted: a deployed CLI makes them too.
LOCAL_ONLY = frozenset({"s3.CreateBucket", "dynamodb.CreateTable", "sqs.CreateQueue"})


def _local_only(role: str, key: str) -> bool:
    return key.startswith(LOCAL_FLEET_PREFIX) or (role == "submit" and key in LOCAL_ONLY)


@dataclass
class ProcessUsage:
    role: str  # "submit", "map" or "reduce"
    requests: Counter[str]
    transaction_items: int
    cpu_s: float
    max_rss_kib: int
    # Operation -> (first request's start, last answer), epoch seconds.
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> ProcessUsage:
        report = json.loads(path.read_text())
        argv = report["argv"]
        role = argv[1] if len(argv) > 1 and argv[1] in ("map", "reduce") else "submit"
        return cls(
            role=role,
            requests=Counter(report["requests"]),
            transaction_items=sum(report.get("transaction_items", {}).values()),
            cpu_s=report["cpu_s"],
            max_rss_kib=report["max_rss_kib"],
            spans={k: (v[0], v[1]) for k, v in report.get("spans", {}).items()},
        )


@dataclass
class DroverRun:
    job: str
    workers: int
    chunk_size_bytes: int
    input_bytes: int
    chunks: int
    seconds: float  # command start to result on disk
    command_s: float  # command start to exit, shutdown included
    job_s: float  # the job's own clock: created to finished, as DynamoDB records it
    # When the job item was created and finished, in seconds from the command's
    # start: before it, start-up and upload; after it, fetching and writing.
    created_s: float
    finished_s: float
    result: Any
    processes: list[ProcessUsage] = field(default_factory=list)

    def _of(self, role: str) -> list[ProcessUsage]:
        return [p for p in self.processes if p.role == role]

    @property
    def requests(self) -> Counter[str]:
        """Every request a deployed Drover would also make."""
        total: Counter[str] = Counter()
        for p in self.processes:
            for key, n in p.requests.items():
                if not _local_only(p.role, key):
                    total[key] += n
        return total

    @property
    def local_only_requests(self) -> int:
        return sum(
            n for p in self.processes for k, n in p.requests.items() if _local_only(p.role, k)
        )

    def requests_by_role(self) -> dict[str, int]:
        out = {"submit": 0, "map": 0, "reduce": 0}
        for p in self.processes:
            out[p.role] += sum(n for k, n in p.requests.items() if not _local_only(p.role, k))
        return out

    @property
    def enqueue_s(self) -> float | None:
        """How long the CLI took to queue the chunk messages: from its first
        SendMessageBatch to the answer of its last."""
        spans = [
            p.spans["sqs.SendMessageBatch"]
            for p in self._of("submit")
            if "sqs.SendMessageBatch" in p.spans
        ]
        if not spans:
            return None
        return max(end for _, end in spans) - min(start for start, _ in spans)

    @property
    def requests_per_chunk(self) -> float:
        return sum(self.requests.values()) / max(1, self.chunks)

    def peak_rss_mib(self, role: str) -> float:
        return max((p.max_rss_kib for p in self._of(role)), default=0) / 1024

    @property
    def submit_cpu_s(self) -> float:
        """The submitting process, in local mode also the embedded AWS."""
        return sum(p.cpu_s for p in self._of("submit"))

    @property
    def worker_cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.processes if p.role != "submit")

    def cost_per_gb(self, settings: cfg.Settings) -> pricing.Cost:
        cost = pricing.estimate(
            cpu_s=self.worker_cpu_s,
            vcpu=settings.worker_cpu / 1024,
            memory_gb=settings.worker_memory_mib / 1024,
            requests=self.requests,
            items=sum(p.transaction_items for p in self.processes),
        )
        gb = self.input_bytes / 1e9
        return pricing.Cost(
            compute_usd=cost.compute_usd / gb,
            spot_compute_usd=cost.spot_compute_usd / gb,
            requests_usd=cost.requests_usd / gb,
        )


def run(
    inputs: list[Path],
    *,
    job: str,
    workers: int | None,
    chunk_size_bytes: int | None,
    work_dir: Path,
    pattern: str | None = None,
) -> DroverRun:
    """One job through the CLI in local mode, in a fresh embedded AWS; a
    `workers` or `chunk_size_bytes` of None leaves the CLI's default."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir = work_dir / "requests"
    output = work_dir / "result.json"
    for stale in (*log_dir.glob("*.json"), output):
        stale.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "submit",
        "run",
        "--local",
        "--job",
        job,
        *(["--pattern", pattern] if pattern is not None else []),
        *map(str, inputs),
        *(["--chunk-size", str(chunk_size_bytes)] if chunk_size_bytes else []),
        *(["--max-workers", str(workers)] if workers else []),
        "--output",
        str(output),
        "--json",
    ]
    env = {
        **os.environ,
        ENV_REQUEST_LOG: str(log_dir),
        "DROVER_HOME": str(work_dir / "home"),
        # Every process of the run, the local fleet's workers included, loads
        # bench/inject/sitecustomize.py, which counts its requests.
        "PYTHONPATH": os.pathsep.join((str(PROJECT_ROOT / "bench" / "inject"), str(PROJECT_ROOT))),
    }
    started = time.time()
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    command_s = time.time() - started
    if proc.returncode != 0 or not output.exists():
        raise RuntimeError(
            f"drover {job} with {workers} worker(s) failed ({proc.returncode}):\n"
            + proc.stderr[-3000:]
        )
    status = json.loads(proc.stdout)

    def since_start(iso: str) -> float:
        return datetime.fromisoformat(iso).timestamp() - started

    return DroverRun(
        job=job,
        workers=workers or os.cpu_count() or 2,
        chunk_size_bytes=chunk_size_bytes or cfg.Settings().default_chunk_size_bytes,
        input_bytes=status["input_bytes"],
        chunks=status["expected"],
        seconds=output.stat().st_mtime - started,
        command_s=command_s,
        job_s=status["elapsed_s"],
        created_s=since_start(status["created_at"]),
        finished_s=since_start(status["finished_at"]),
        result=json.loads(output.read_text(encoding="utf-8")),
        processes=[ProcessUsage.read(p) for p in sorted(log_dir.glob("*.json"))],
    )
