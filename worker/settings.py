"""The one source of limits and scaling steps (names are in `worker.names`).

The CDK stack reads these defaults and overrides them from `cdk.json` context
(`infra/config.py`); the local mode reads the same context file through
`load_context`, so a deployed fleet and a laptop fleet scale by the same rules.
This module is plain data: the container image, the stack and the CLI all
import it, and it must not import boto3 or aws-cdk-lib.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ScalingStep:
    """One step of step scaling on the number of visible messages.

    Same meaning as `aws_applicationautoscaling.ScalingInterval`: the step
    applies when `lower <= visible < upper` (a missing bound is open) and
    changes the task count by `change`.
    """

    change: int
    lower: int | None = None
    upper: int | None = None

    def matches(self, visible: int) -> bool:
        return (self.lower is None or visible >= self.lower) and (
            self.upper is None or visible < self.upper
        )

    def as_cdk(self) -> dict[str, int]:
        out = {"change": self.change}
        if self.lower is not None:
            out["lower"] = self.lower
        if self.upper is not None:
            out["upper"] = self.upper
        return out


# Scale out from the first visible message (the pattern's default waits for
# 100, which leaves a fleet at zero asleep), faster on deep backlogs. Scale-in
# is not a step on visible messages: it happens only after the backlog
# including in-flight messages has been zero for `scale_in_idle_s`.
DEFAULT_SCALE_OUT_STEPS: tuple[ScalingStep, ...] = (
    ScalingStep(lower=1, upper=100, change=1),
    ScalingStep(lower=100, upper=500, change=2),
    ScalingStep(lower=500, change=5),
)

# Seconds a fleet waits after a scale-out step before the next one.
SCALE_OUT_COOLDOWN_S = 60


def scaling_change(steps: Sequence[ScalingStep], visible: int) -> int:
    """The change the first matching scale-out step asks for, 0 if none."""
    for step in steps:
        if step.matches(visible):
            return step.change
    return 0


@dataclass(frozen=True)
class Settings:
    """Fleet and queue settings; field names carry their units."""

    max_workers: int = 8
    max_reducers: int = 2
    worker_cpu: int = 1024
    worker_memory_mib: int = 2048
    use_spot: bool = False
    max_receive_count: int = 5
    visibility_timeout_s: int = 300
    receive_wait_s: int = 20
    # Messages one receive may take. One keeps the fleet balanced when chunks
    # are few and large; deletes are batched instead (see worker.queues.DeleteBatcher).
    receive_batch_size: int = 1
    stop_timeout_s: int = 120
    queue_retention_days: int = 4
    dlq_retention_days: int = 14
    map_output_expiry_days: int = 7
    log_retention_days: int = 30
    scale_out_steps: tuple[ScalingStep, ...] = DEFAULT_SCALE_OUT_STEPS
    scale_in_idle_s: int = 900
    default_chunk_size_bytes: int = 16 * 1024 * 1024
    default_partitions: int = 1
    alarm_email: str | None = None

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# cdk.json context key -> Settings field, with the type each accepts.
CONTEXT_KEYS: dict[str, tuple[str, type]] = {
    "maxWorkers": ("max_workers", int),
    "maxReducers": ("max_reducers", int),
    "workerCpu": ("worker_cpu", int),
    "workerMemoryMiB": ("worker_memory_mib", int),
    "useSpot": ("use_spot", bool),
    "maxReceiveCount": ("max_receive_count", int),
    "visibilityTimeoutSeconds": ("visibility_timeout_s", int),
    "scaleInIdleSeconds": ("scale_in_idle_s", int),
    "mapOutputExpiryDays": ("map_output_expiry_days", int),
    "logRetentionDays": ("log_retention_days", int),
    "alarmEmail": ("alarm_email", str),
}

# Fargate's valid CPU units and, for each, the memory sizes it accepts.
FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}


class SettingsError(ValueError):
    """A context value is missing, of the wrong type or out of range."""


def _coerce(key: str, value: Any, kind: type) -> Any:
    # cdk accepts `-c key=value` as strings; accept those spellings too.
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise SettingsError(f"context {key!r} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise SettingsError(f"context {key!r} must be a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise SettingsError(f"context {key!r} must be a whole number, got {value!r}")
    if not isinstance(value, str):
        raise SettingsError(f"context {key!r} must be a string, got {value!r}")
    return value


def from_context(context: Mapping[str, Any], base: Settings | None = None) -> Settings:
    """Settings from cdk context keys (unknown keys are ignored: cdk keeps
    its own feature flags in the same map), validated."""
    changes: dict[str, Any] = {}
    for key, (name, kind) in CONTEXT_KEYS.items():
        if key in context and context[key] is not None and context[key] != "":
            changes[name] = _coerce(key, context[key], kind)
    settings = (base or Settings()).with_overrides(**changes)
    validate(settings)
    return settings


def _require(ok: bool, key: str, allowed: str, value: Any) -> None:
    if not ok:
        raise SettingsError(f"context {key!r} must be {allowed}, got {value!r}")


def validate(s: Settings) -> None:
    _require(1 <= s.max_workers <= 1000, "maxWorkers", "from 1 to 1000", s.max_workers)
    _require(1 <= s.max_reducers <= 100, "maxReducers", "from 1 to 100", s.max_reducers)
    _require(
        s.worker_cpu in FARGATE_MEMORY_MIB,
        "workerCpu",
        "one of " + ", ".join(map(str, FARGATE_MEMORY_MIB)),
        s.worker_cpu,
    )
    allowed_mem = FARGATE_MEMORY_MIB[s.worker_cpu]
    _require(
        s.worker_memory_mib in allowed_mem,
        "workerMemoryMiB",
        f"one of {allowed_mem[0]}..{allowed_mem[-1]} in steps of 1024 for workerCpu {s.worker_cpu}"
        if len(allowed_mem) > 3
        else "one of " + ", ".join(map(str, allowed_mem)) + f" for workerCpu {s.worker_cpu}",
        s.worker_memory_mib,
    )
    _require(
        1 <= s.max_receive_count <= 1000, "maxReceiveCount", "from 1 to 1000", s.max_receive_count
    )
    _require(
        30 <= s.visibility_timeout_s <= 43200,
        "visibilityTimeoutSeconds",
        "from 30 to 43200 (12 hours)",
        s.visibility_timeout_s,
    )
    _require(
        60 <= s.scale_in_idle_s <= 86400,
        "scaleInIdleSeconds",
        "from 60 to 86400",
        s.scale_in_idle_s,
    )
    _require(
        1 <= s.map_output_expiry_days <= 3650,
        "mapOutputExpiryDays",
        "from 1 to 3650",
        s.map_output_expiry_days,
    )
    _require(
        s.log_retention_days in LOG_RETENTION_DAYS,
        "logRetentionDays",
        "one of " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        s.log_retention_days,
    )
    if s.alarm_email is not None:
        _require(
            "@" in s.alarm_email and " " not in s.alarm_email,
            "alarmEmail",
            "an e-mail address",
            s.alarm_email,
        )


# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"


def load_context(path: Path | None = None) -> dict[str, Any]:
    """The `context` map of cdk.json (the project's unless `path` is given),
    or {} where the file is absent (the container image ships without it)."""
    path = path or CDK_JSON
    try:
        context = json.loads(path.read_text())["context"]
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SettingsError(f"{path}: not a cdk.json with a context object ({e})") from e
    return dict(context)


def load(path: Path | None = None) -> Settings:
    """Settings as the stack would build them from cdk.json."""
    return from_context(load_context(path))
