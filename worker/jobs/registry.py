"""Jobs by name. The worker imports job modules at start-up and looks jobs
up here; a message names a job, never code."""

from __future__ import annotations

import importlib
import os
from typing import TypeVar

from worker.jobs.base import Job, JobError

ENV_JOB_MODULES = "DROVER_JOB_MODULES"
BUILTIN_MODULES = ("worker.jobs.wordcount", "worker.jobs.grep")

_REGISTRY: dict[str, Job] = {}
_loaded = False

J = TypeVar("J", bound=type[Job])


def register(cls: J) -> J:
    """Class decorator: make a job available by its `name`."""
    _REGISTRY[cls.name] = cls()
    return cls


def load_jobs(extra: str | None = None) -> None:
    """Import the built-in jobs and the modules named in DROVER_JOB_MODULES
    (comma-separated), whose @register calls fill the registry."""
    global _loaded
    _loaded = True
    names = extra if extra is not None else os.environ.get(ENV_JOB_MODULES, "")
    for module in (*BUILTIN_MODULES, *filter(None, (n.strip() for n in names.split(",")))):
        importlib.import_module(module)


def get_job(name: str) -> Job:
    if not _loaded:
        load_jobs()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise JobError(f"unknown job {name!r} (known: {known})") from None


def job_names() -> list[str]:
    if not _loaded:
        load_jobs()
    return sorted(_REGISTRY)
