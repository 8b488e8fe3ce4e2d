"""ECS from inside and outside a task: waking a fleet, and task scale-in
protection while a worker holds a message."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.settings import PROTECTION_MINUTES
from worker.settings import PROTECTION_RENEW_AFTER_S as RENEW_AFTER_S

log = logging.getLogger(__name__)

RENEW_RETRY_S = 60.0

ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def wake_service(ecs: Any, *, cluster: str, service: str, need: int, max_tasks: int) -> int:
    """Raise a service's desired count to min(need, max_tasks) if it is
    lower, so work starts now instead of after the queue alarm (minutes).
    Never lowers it: shrinking is the scaling rules' business. Returns the
    desired count after the call."""
    want = min(need, max_tasks)
    found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    if not found:
        raise LookupError(f"ECS service {service} not found in cluster {cluster}")
    desired = int(found[0].get("desiredCount", 0))
    if desired >= want:
        return desired
    ecs.update_service(cluster=cluster, service=service, desiredCount=want)
    log.info("raised %s desired count from %d to %d", service, desired, want)
    return want


# What every wake path looks like: `wake(fleet, need)` asks the fleet ("map"
# or "reduce") for workers for `need` queued messages, bounded by its
# maximum; it never lowers a fleet and never fails its caller. A deployed
# Drover's is a Waker; a local one's, the local fleet's `wake`.
Wake = Callable[[str, int], object]


@dataclass(frozen=True)
class Service:
    name: str
    max_tasks: int


class Waker:
    """The one wake path of a deployed Drover: `waker(fleet, need)` raises
    the fleet's service to min(need, its maximum) with `wake_service`.

    Best effort: a wake-up only saves the minutes the queue alarm takes, so
    it never fails the caller. Without permission (no ecs:UpdateService or
    ecs:DescribeServices) it warns once, naming what is missing, and stays
    quiet after that; any other failure is warned about and the work waits
    for the alarm.
    """

    def __init__(
        self,
        ecs: Any,
        *,
        cluster: str,
        services: Mapping[str, Service],
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        self.ecs = ecs
        self.cluster = cluster
        self.services = dict(services)
        self.warn = warn
        self.denied = False

    def __call__(self, fleet: str, need: int) -> None:
        service = self.services.get(fleet)
        if service is None or need < 1 or self.denied:
            return
        try:
            wake_service(
                self.ecs,
                cluster=self.cluster,
                service=service.name,
                need=need,
                max_tasks=service.max_tasks,
            )
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ACCESS_DENIED:
                self.denied = True
                self.warn(
                    f"cannot start {fleet} workers now ({code}: this identity needs "
                    f"ecs:DescribeServices and ecs:UpdateService on {service.name}); "
                    "the queue alarm starts them within minutes"
                )
            else:
                self.warn(f"could not start {fleet} workers now ({e}); the queue alarm will")
        except (BotoCoreError, LookupError) as e:
            self.warn(f"could not start {fleet} workers now ({e}); the queue alarm will")


class TaskProtection:
    """Scale-in protection through the ECS agent, while the task holds work.

    Set for PROTECTION_MINUTES when the worker takes a message and renewed by
    the heartbeat (`renew_if_due`) once half of that has passed, so a message
    that takes longer than the expiry is still protected; released when a
    receive comes back empty. Outside ECS (no ECS_AGENT_URI) it only keeps
    the state. Failures are logged and ignored (a failed renewal is tried
    again a minute later): protection narrows the window in which scale-in
    interrupts a chunk, and SQS redelivery covers whatever it does not.
    """

    def __init__(
        self, agent_uri: str | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.agent_uri = agent_uri if agent_uri is not None else os.environ.get("ECS_AGENT_URI")
        self.clock = clock
        self.enabled = False
        self.renew_at = 0.0
        self._lock = threading.Lock()

    def hold(self) -> None:
        with self._lock:
            if not self.enabled:
                self._set(True)

    def release(self) -> None:
        with self._lock:
            if self.enabled:
                self._set(False)

    def renew_if_due(self) -> None:
        with self._lock:
            if self.enabled and self.clock() >= self.renew_at:
                self._set(True)

    def _set(self, on: bool) -> None:
        if on:
            # Also when the call fails: try again a minute later.
            self.renew_at = self.clock() + RENEW_RETRY_S
        if not self.agent_uri:
            self._done(on)
            return
        body: dict[str, Any] = {"ProtectionEnabled": on}
        if on:
            body["ExpiresInMinutes"] = PROTECTION_MINUTES
        request = urllib.request.Request(
            f"{self.agent_uri}/task-protection/v1/state",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                resp.read()
            self._done(on)
        except OSError as e:
            log.warning("task protection %s failed: %s", "on" if on else "off", e)

    def _done(self, on: bool) -> None:
        self.enabled = on
        if on:
            self.renew_at = self.clock() + RENEW_AFTER_S
