"""Ending a process at once, once its work is done.

A Python process that imported boto3, numpy or moto spends a few tenths of
a second at exit freeing its modules one object at a time. A worker, its
work process and the embedded AWS have nothing left to save by then (their
work is durable or given back, their files closed), so they skip that:
exit handlers still run and the standard streams and logs are flushed,
then the process ends."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or nobody reads it
            stream.flush()
    os._exit(code)
