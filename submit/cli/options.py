"""Argument types and options that several commands share."""

from __future__ import annotations

import argparse

from submit.splitting import parse_size
from worker.names import DEFAULT_STACK_NAME


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
