"""Jobs by name. `submit` and every worker import the same job modules at
start-up and look jobs up here; a message names a job, never code.

A job module is named as a module (`myjobs`, `team.jobs`) or as a path (a
`.py` file, or a package's directory): a path's parent directory is put on
`sys.path` and the module imported by its name, so the same words work for
`run --job-module`, for DROVER_JOB_MODULES and inside the worker image.

A module that fails to import does not stop a worker: the failure is kept,
and a message for a job it would have registered fails, naming the module
and the error, like any message for an unknown job. That holds for a module
that raises SystemExit as it is imported (a script's `sys.exit()` at its top
level) as for any exception.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from worker.jobs.base import Job, JobError, Params
from worker.names import ENV_JOB_MODULES

BUILTIN_MODULES = (
    "worker.jobs.wordcount",
    "worker.jobs.grep",
    "worker.jobs.topwords",
    "worker.jobs.inverted_index",
    "worker.jobs.access_log",
)

_REGISTRY: dict[str, type[Job]] = {}
# Job modules that could not be imported, with the error each raised.
_FAILED: dict[str, str] = {}
_loaded = False

J = TypeVar("J", bound=type[Job])


def register(cls: J) -> J:
    """Class decorator: make a job available by its `name`. A name another
    job holds (a built-in's, another module's) is refused: one of them would
    silently run in place of the other. The same class from the same file
    again (a module imported under a second name, or reloaded) is fine."""
    held = _REGISTRY.get(cls.name)
    if held is not None and _source(held) != _source(cls):
        raise JobError(
            f"job name {cls.name!r} of {cls.__module__}.{cls.__qualname__} is taken by "
            f"{held.__module__}.{held.__qualname__}; give the job another name"
        )
    _REGISTRY[cls.name] = cls
    return cls


def _source(cls: type) -> tuple[str, str]:
    module = sys.modules.get(cls.__module__)
    where = getattr(module, "__file__", None) or cls.__module__
    return os.path.realpath(where), cls.__qualname__


def split_modules(names: str) -> list[str]:
    """DROVER_JOB_MODULES's entries (comma-separated)."""
    return [n.strip() for n in names.split(",") if n.strip()]


def module_name(entry: str) -> tuple[str, str | None]:
    """The module to import for a job-module entry, and the directory to
    put on sys.path first (None for a plain module name)."""
    path = Path(entry)
    if entry.endswith(".py") or os.sep in entry or (os.altsep and os.altsep in entry):
        path = path.resolve()
        name = path.stem if path.suffix == ".py" else path.name
        return name, str(path.parent)
    return entry, None


def import_module(entry: str) -> None:
    """Import one job module; raises JobError saying why it could not be."""
    name, directory = module_name(entry)
    if directory is not None:
        if not Path(entry).exists():
            raise JobError(f"job module {entry!r}: no such file or directory")
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        module = importlib.import_module(name)
    except (Exception, SystemExit) as e:
        raise JobError(f"job module {entry!r} could not be loaded: {type(e).__name__}: {e}") from e
    if directory is not None:
        # A file named like a module already imported (random.py) would
        # leave that module in its place, and none of its jobs registered.
        found = getattr(module, "__file__", None)
        given = Path(entry).resolve()
        if given.is_dir():
            ours = given in {Path(p).resolve() for p in getattr(module, "__path__", [])}
        else:
            ours = found is not None and Path(found).resolve() == given
        if not ours:
            raise JobError(
                f"job module {entry!r}: the name {name!r} is already taken by "
                f"{found or 'a built-in module'}; rename the file"
            )
    if getattr(module, "__file__", None) is None and hasattr(module, "__path__"):
        _import_members(entry, module)


def _import_members(entry: str, package: ModuleType) -> None:
    """A directory without __init__.py, as `jobModules` takes one: each of
    its .py files, as DIRECTORY.MODULE. Imported alone, the directory is an
    empty namespace package and would register no job."""
    members = sorted(
        {p.stem for d in package.__path__ for p in Path(d).glob("*.py") if p.stem.isidentifier()}
    )
    if not members:
        raise JobError(f"job module {entry!r}: a directory without __init__.py or .py files")
    for member in members:
        try:
            importlib.import_module(f"{package.__name__}.{member}")
        except (Exception, SystemExit) as e:
            raise JobError(
                f"job module {entry!r} could not be loaded: {member}.py: {type(e).__name__}: {e}"
            ) from e


def load_jobs(modules: Iterable[str] | None = None, *, strict: bool = False) -> None:
    """Import the built-in jobs and the job modules (default: those in
    DROVER_JOB_MODULES), whose @register calls fill the registry. With
    `strict`, a module that fails raises JobError; otherwise its failure is
    kept for `get_job` to report."""
    global _loaded
    _loaded = True
    for builtin in BUILTIN_MODULES:
        importlib.import_module(builtin)
    chosen = split_modules(os.environ.get(ENV_JOB_MODULES, "")) if modules is None else modules
    for entry in chosen:
        try:
            import_module(entry)
        except JobError as e:
            if strict:
                raise
            _FAILED[entry] = str(e)
        else:
            _FAILED.pop(entry, None)


def load_failures() -> dict[str, str]:
    return dict(_FAILED)


def job_class(name: str) -> type[Job]:
    if not _loaded:
        load_jobs()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        message = f"unknown job {name!r} (known: {known})"
        if _FAILED:
            message += "; " + "; ".join(_FAILED.values())
        raise JobError(message) from None


def get_job(name: str, params: Params | None = None) -> Job:
    """The job named `name`, seeing `params` (already checked) as its
    parameters."""
    return job_class(name)(params)


def job_names() -> list[str]:
    if not _loaded:
        load_jobs()
    return sorted(_REGISTRY)
