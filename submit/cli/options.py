"""Argument types and options that several commands share."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from submit.errors import UsageError
from submit.splitting import parse_size
from worker.jobs import load_jobs
from worker.jobs.registry import module_name, split_modules
from worker.names import DEFAULT_STACK_NAME, ENV_JOB_MODULES


def size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds, more than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def count(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stack",
        metavar="NAME",
        help=f"deployed stack to use (default: the running embedded AWS, "
        f"else {DEFAULT_STACK_NAME!r})",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_job_modules(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--job-module",
        action="append",
        default=[],
        dest="job_modules",
        metavar="PATH_OR_MODULE",
        help="load your jobs from this module (a name on PYTHONPATH, a .py file, a package "
        "directory or a directory of .py files), here and in every local worker; repeatable. "
        f"{ENV_JOB_MODULES} (comma-separated) adds more",
    )


def load_job_modules(extra: Sequence[str]) -> list[str]:
    """Load the job modules of DROVER_JOB_MODULES and `extra`; a module
    that cannot be loaded stops the command (exit 2). Returns them, paths
    made absolute, as workers elsewhere (another directory) must name them."""
    entries = [*split_modules(os.environ.get(ENV_JOB_MODULES, "")), *extra]
    load_jobs(entries, strict=True)
    resolved = [e if module_name(e)[1] is None else os.path.abspath(e) for e in entries]
    return list(dict.fromkeys(resolved))


def params_of(pairs: Sequence[str]) -> dict[str, str]:
    """`--param NAME=VALUE` options as a dict; the job converts the values."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {pair!r}: expected NAME=VALUE")
        params[name.strip()] = value
    return params


def check_output(path: Path | None) -> None:
    """Refuse an `--output` the result could not be written to, before
    anything is queued: a directory, a file in a directory that does not
    exist or that this user cannot write in."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--output {path}: is a directory; give a file name")
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"--output {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"--output {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--output {path}: cannot write in {parent}")
