"""`run --local` stopped by SIGTERM (`timeout`, a CI runner's cancel,
systemd) leaves nothing behind: not the embedded AWS, not a worker busy
with a chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """The processes under `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_the_fleet_and_the_embedded_aws(tmp_path: Path) -> None:
    corpus = tmp_path / "in.txt"
    corpus.write_text("a slow chunk\n" * 100)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "submit",
            "run",
            "--local",
            "--job",
            "test-slow-wordcount",
            "--job-module",
            "tests.reliability.jobs",
            "--param",
            "seconds=60",
            str(corpus),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "chunks of up to" in line:  # the job is queued
                break
        else:
            raise AssertionError(f"run --local ended early: {proc.wait()}")
        # A worker takes the chunk and sleeps in it for a minute.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any("worker.child" in _cmdline(p) for p in descendants(proc.pid)):
                break
            time.sleep(0.2)
        time.sleep(2)
        left = descendants(proc.pid)
        assert any("worker.child" in _cmdline(p) for p in left)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        assert "terminated" in proc.stderr.read()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in left if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
