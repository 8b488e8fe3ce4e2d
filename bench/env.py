"""The benchmark's own Python environment, bench/.venv: mrjob and matplotlib
from bench/requirements.txt, installed from PyPI on first use and again
whenever that file changes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ENV_DIR = BENCH_DIR / ".venv"
REQUIREMENTS = BENCH_DIR / "requirements.txt"


def python() -> Path:
    """The environment's interpreter, created or brought up to date first."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    stamp = ENV_DIR / f".installed-{digest}"
    interpreter = ENV_DIR / "bin" / "python"
    if not stamp.exists():
        print(f"bench: installing {REQUIREMENTS.name} into {ENV_DIR}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(ENV_DIR)], check=True)
        subprocess.run(
            [str(interpreter), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
            check=True,
        )
        stamp.touch()
    return interpreter
