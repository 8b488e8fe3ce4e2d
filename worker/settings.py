"""The one source of limits and scaling steps (names are in `worker.names`).

The CDK stack reads these defaults and overrides them from `cdk.json` context
(`infra/config.py`); the local mode reads the same context file through
`load_context`, so a deployed fleet and a laptop fleet scale by the same rules.
This module is plain data: the container image, the stack and the CLI all
import it, and it must not import boto3 or aws-cdk-lib.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# How a fleet scales (the stack's alarms and policies, infra/constructs/fleet.py,
# and the local fleet, submit/fleet.py, both read these):
#
# - Wake: whoever queues work raises the service's desired count at once to
#   min(need, maximum), never lowering it (worker.ecs.wake_service).
# - Size: a fleet that runs fewer tasks than its backlog (visible plus in
#   flight) is set to the level of that backlog: an exact capacity, so a
#   repeated alarm action changes nothing, and never more than the backlog.
# - Rest: once the workers themselves report that none of them held a message
#   and the queue showed none for the idle window, the fleet is set to zero.
#
# CloudWatch's metric period for every scaling alarm.
METRIC_PERIOD_S = 60
# Application Auto Scaling accepts at most this many step adjustments in one
# step scaling policy (a quota that cannot be raised).
MAX_STEP_ADJUSTMENTS = 20
# The sizing alarm acts when this many of its last SIZING_EVALUATION_PERIODS
# minutes show a shortfall: one spurious point, or a sample taken while
# submit is still enqueueing, does not act on its own.
SIZING_EVALUATION_PERIODS = 3
SIZING_DATAPOINTS_TO_ALARM = 2
# Seconds a sizing step waits before a smaller one may follow.
SCALE_OUT_COOLDOWN_S = 60
# Idle minutes within the idle window that may show a stray in-flight message
# (SQS reports a spurious 1 on an empty queue now and then).
IDLE_SPURIOUS_MINUTES = 1
# After setting a fleet to zero, the idle policy acts again no sooner than
# this: longer than its alarm can stay in ALARM on minutes that were idle
# before the scale-in (metric delay plus the spurious allowance), so a wake-up
# made in that time is never undone.
IDLE_COOLDOWN_S = 300

# Workers report whether they held a message in CloudWatch's embedded metric
# format (a JSON line on stdout that CloudWatch Logs turns into a metric):
# evidence of idleness that, unlike SQS's metrics, has no 15-minute gap when
# a queue turns active again after six idle hours.
ACTIVITY_REPORT_S = 20

# Task scale-in protection (worker.ecs.TaskProtection): set for this long
# when a worker takes a message, renewed once half of it has passed.
PROTECTION_MINUTES = 60
PROTECTION_RENEW_AFTER_S = PROTECTION_MINUTES * 60 / 2


def scaling_levels(max_tasks: int) -> tuple[int, ...]:
    """The task counts the sizing policy can set, from 1 to `max_tasks`.

    Every count up to MAX_STEP_ADJUSTMENTS; above that a geometric ladder
    from 1 to `max_tasks` in MAX_STEP_ADJUSTMENTS rungs (each at least one
    above the last), so that a backlog between two rungs gets the lower one.
    """
    if max_tasks < 1:
        raise ValueError(f"a fleet needs a maximum of 1 task or more, got {max_tasks}")
    if max_tasks <= MAX_STEP_ADJUSTMENTS:
        return tuple(range(1, max_tasks + 1))
    last = MAX_STEP_ADJUSTMENTS - 1
    levels = [1]
    for i in range(1, last + 1):
        rung = int(max_tasks ** (i / last) + 1e-9)
        levels.append(max(levels[-1] + 1, rung))
    levels[-1] = max_tasks
    return tuple(levels)


def scaling_level(backlog: int, max_tasks: int) -> int:
    """The task count the sizing policy sets for `backlog` messages: the
    highest level not above it (0 for an empty backlog)."""
    return max((level for level in scaling_levels(max_tasks) if level <= backlog), default=0)


def idle_periods(idle_s: int) -> int:
    """Minutes of the idle alarm's window."""
    return max(1, -(-idle_s // METRIC_PERIOD_S))


def idle_datapoints_to_alarm(idle_s: int) -> int:
    periods = idle_periods(idle_s)
    return max(1, periods - IDLE_SPURIOUS_MINUTES)


@dataclass(frozen=True)
class Settings:
    """Fleet and queue settings; field names carry their units."""

    max_workers: int = 8
    max_reducers: int = 2
    worker_cpu: int = 1024
    worker_memory_mib: int = 2048
    use_spot: bool = False
    max_receive_count: int = 5
    # How long a message stays hidden after a receive. The worker's heartbeat
    # extends the message in hand every third of it, so this bounds only how
    # long a dead worker's message waits before another worker takes it.
    visibility_timeout_s: int = 30
    receive_wait_s: int = 20
    # Messages one receive may take. One keeps the fleet balanced when chunks
    # are few and large; deletes are batched instead (see worker.queues.DeleteBatcher).
    receive_batch_size: int = 1
    stop_timeout_s: int = 120
    queue_retention_days: int = 4
    dlq_retention_days: int = 14
    map_output_expiry_days: int = 7
    # Uploaded inputs and chunk plans outlive the map outputs: `retry` reads
    # both to send a failed job's chunks again.
    input_expiry_days: int = 10
    log_retention_days: int = 30
    scale_in_idle_s: int = 900
    # The most one message (a chunk or a partition) may run before the worker
    # stops it and counts a failed attempt (worker.isolation).
    max_task_s: int = 1800
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
    "inputExpiryDays": ("input_expiry_days", int),
    "maxTaskSeconds": ("max_task_s", int),
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
        s.map_output_expiry_days <= s.input_expiry_days <= 3650,
        "inputExpiryDays",
        f"from mapOutputExpiryDays ({s.map_output_expiry_days}) to 3650: `retry` reads a "
        "job's inputs and chunk plan again",
        s.input_expiry_days,
    )
    _require(
        MIN_TASK_S <= s.max_task_s <= MAX_TASK_S,
        "maxTaskSeconds",
        f"from {MIN_TASK_S} to {MAX_TASK_S} (SQS hides a message for at most 12 hours "
        "from its receive)",
        s.max_task_s,
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


# maxTaskSeconds: a limit below 10 s stops ordinary chunks, and SQS hides a
# message for at most 12 hours from its receive, extensions included (the
# stop takes a few seconds more than the limit).
MIN_TASK_S = 10
MAX_TASK_S = 43200 - 60

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
