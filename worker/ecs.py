"""ECS from inside and outside a task: waking a fleet at zero, and task
scale-in protection while a worker holds a message."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

log = logging.getLogger(__name__)

PROTECTION_MINUTES = 60


def wake_service(ecs: Any, *, cluster: str, service: str, at_least: int) -> int:
    """Raise a service's desired count to `at_least` if it is lower, so work
    starts now instead of after the queue-depth alarm (minutes). Scale-in is
    left to autoscaling. Returns the desired count after the call."""
    found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    if not found:
        raise LookupError(f"ECS service {service} not found in cluster {cluster}")
    desired = int(found[0].get("desiredCount", 0))
    if desired >= at_least:
        return desired
    ecs.update_service(cluster=cluster, service=service, desiredCount=at_least)
    log.info("raised %s desired count from %d to %d", service, desired, at_least)
    return at_least


class TaskProtection:
    """Scale-in protection through the ECS agent, while the task holds work.

    Outside ECS (no ECS_AGENT_URI) it does nothing. Failures are logged and
    ignored: protection narrows the window in which scale-in interrupts a
    chunk, and SQS redelivery covers whatever it does not.
    """

    def __init__(self, agent_uri: str | None = None) -> None:
        self.agent_uri = agent_uri if agent_uri is not None else os.environ.get("ECS_AGENT_URI")
        self.enabled = False

    def hold(self) -> None:
        if not self.enabled:
            self._set(True)

    def release(self) -> None:
        if self.enabled:
            self._set(False)

    def _set(self, on: bool) -> None:
        if not self.agent_uri:
            self.enabled = on
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
            self.enabled = on
        except OSError as e:
            log.warning("task protection %s failed: %s", "on" if on else "off", e)
