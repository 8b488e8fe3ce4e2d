"""What the stack is built from: cdk context, turned into the shared
`worker.settings.Settings` plus the few options only the deployment has.

`cdk.json` holds the defaults; `cdk deploy -c maxWorkers=20` overrides one.
Every value is checked here, before any construct exists, and a bad one is
reported with the key and the values it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs import Node

from worker.names import DEFAULT_STACK_NAME
from worker.settings import CONTEXT_KEYS, Settings, SettingsError, from_context

STACK_NAME_KEY = "stackName"
INPUT_BUCKETS_KEY = "inputBuckets"
JOB_MODULES_KEY = "jobModules"
DEPLOYMENT_KEYS = (STACK_NAME_KEY, INPUT_BUCKETS_KEY, JOB_MODULES_KEY)

# CloudFormation's rule for stack names.
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# S3's rule for (new, DNS-compatible) bucket names.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Deployment:
    """Everything the app needs from context."""

    settings: Settings
    stack_name: str = DEFAULT_STACK_NAME
    # Buckets outside the stack that map workers may read job inputs from.
    input_buckets: tuple[str, ...] = ()
    # Your jobs, built into the worker image: a directory on this machine.
    job_modules: JobModules | None = None


@dataclass(frozen=True)
class JobModules:
    """A directory of job modules to build into the worker image: a package
    (it has __init__.py), imported by its name, or a plain directory whose
    .py files are each imported as `<directory>.<module>`."""

    directory: Path

    @property
    def package(self) -> str:
        """Its name inside the image, on the image's PYTHONPATH."""
        return self.directory.name

    @property
    def modules(self) -> tuple[str, ...]:
        """What the workers import (DROVER_JOB_MODULES)."""
        if (self.directory / "__init__.py").exists():
            return (self.package,)
        return tuple(
            f"{self.package}.{p.stem}"
            for p in sorted(self.directory.glob("*.py"))
            if p.stem.isidentifier()
        )


def deployment_from_context(context: Mapping[str, Any]) -> Deployment:
    """Validated deployment options from a context map; raises SettingsError
    naming the key and its allowed values."""
    return Deployment(
        settings=from_context(context),
        stack_name=_stack_name(context.get(STACK_NAME_KEY)),
        input_buckets=_input_buckets(context.get(INPUT_BUCKETS_KEY)),
        job_modules=_job_modules(context.get(JOB_MODULES_KEY)),
    )


def deployment_from_node(node: Node) -> Deployment:
    """The same, read from an app's construct node (cdk.json, `-c` options)."""
    keys = (*CONTEXT_KEYS, *DEPLOYMENT_KEYS)
    return deployment_from_context({key: node.try_get_context(key) for key in keys})


def _stack_name(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT_STACK_NAME
    if not isinstance(value, str) or not _STACK_NAME.fullmatch(value):
        raise SettingsError(
            f"context {STACK_NAME_KEY!r} must be a letter followed by up to 127 letters, "
            f"digits or hyphens, got {value!r}"
        )
    return value


def _input_buckets(value: Any) -> tuple[str, ...]:
    # A list in cdk.json, or a comma-separated string from `-c inputBuckets=a,b`.
    if value is None or value == "":
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise SettingsError(
            f"context {INPUT_BUCKETS_KEY!r} must be a list of bucket names or a "
            f"comma-separated string, got {value!r}"
        )
    cleaned = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    for name in cleaned:
        if not _BUCKET_NAME.fullmatch(name) or ".." in name:
            raise SettingsError(
                f"context {INPUT_BUCKETS_KEY!r} must hold S3 bucket names (3 to 63 lower-case "
                f"letters, digits, dots or hyphens), got {name!r}"
            )
    return cleaned


def _job_modules(value: Any) -> JobModules | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SettingsError(
            f"context {JOB_MODULES_KEY!r} must be the path of a directory of job modules, "
            f"got {value!r}"
        )
    directory = Path(value).expanduser().resolve()
    if not directory.is_dir():
        raise SettingsError(
            f"context {JOB_MODULES_KEY!r} must be the path of a directory of job modules "
            f"(a package, or a directory of .py files), got {value!r}: no such directory"
        )
    found = JobModules(directory)
    if not directory.name.isidentifier() or not found.modules:
        raise SettingsError(
            f"context {JOB_MODULES_KEY!r}: {value!r} holds no module Python can import by "
            "the directory's name (a package with __init__.py, or .py files)"
        )
    return found
