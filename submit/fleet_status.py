"""What the fleet is doing: queue depths and workers, local or deployed."""

from __future__ import annotations

from typing import Any

from submit.clients import Clients
from submit.resources import Resources


def queue_depths(sqs: Any, resources: Resources) -> dict[str, dict[str, int]]:
    out = {}
    for name, url in (
        ("map", resources.map_queue_url),
        ("map-dlq", resources.map_dlq_url),
        ("reduce", resources.reduce_queue_url),
        ("reduce-dlq", resources.reduce_dlq_url),
    ):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        out[name] = {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        }
    return out


def deployed_services(clients: Clients, resources: Resources) -> dict[str, dict[str, int]]:
    if clients.ecs is None or not resources.cluster:
        return {}
    names = {"map": resources.map_service, "reduce": resources.reduce_service}
    found = clients.ecs.describe_services(
        cluster=resources.cluster, services=[n for n in names.values() if n]
    )["services"]
    by_name = {s["serviceName"]: s for s in found}
    out = {}
    for role, name in names.items():
        s = by_name.get((name or "").rsplit("/", 1)[-1]) or by_name.get(name or "")
        if s:
            out[role] = {
                "desired": s.get("desiredCount", 0),
                "running": s.get("runningCount", 0),
                "pending": s.get("pendingCount", 0),
            }
    return out
