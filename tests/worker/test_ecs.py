"""Waking a fleet, and keeping a busy task protected."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from worker.ecs import RENEW_AFTER_S, Service, TaskProtection, Waker, wake_service


class FakeEcs:
    """Just the two calls a wake-up makes, with a desired count to change."""

    def __init__(self, desired: int = 0, error: str | None = None) -> None:
        self.desired = desired
        self.error = error
        self.updates: list[int] = []

    def describe_services(self, *, cluster: str, services: list[str]) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "DescribeServices")
        return {"services": [{"serviceName": services[0], "desiredCount": self.desired}]}

    def update_service(self, *, cluster: str, service: str, desiredCount: int) -> None:
        self.updates.append(desiredCount)
        self.desired = desiredCount


def test_wake_raises_to_the_need_bounded_by_the_maximum() -> None:
    ecs = FakeEcs()
    assert wake_service(ecs, cluster="c", service="s", need=3, max_tasks=8) == 3
    assert wake_service(ecs, cluster="c", service="s", need=50, max_tasks=8) == 8
    assert ecs.updates == [3, 8]


def test_wake_never_lowers_a_fleet() -> None:
    ecs = FakeEcs(desired=5)
    assert wake_service(ecs, cluster="c", service="s", need=1, max_tasks=8) == 5
    assert ecs.updates == []


def test_waker_without_permission_warns_once_and_never_raises() -> None:
    warnings: list[str] = []
    ecs = FakeEcs(error="AccessDeniedException")
    waker = Waker(ecs, cluster="c", services={"map": Service("svc", 8)}, warn=warnings.append)
    waker("map", 3)
    waker("map", 3)
    waker("map", 5)
    assert len(warnings) == 1
    assert "ecs:UpdateService" in warnings[0] and "alarm" in warnings[0]


def test_waker_survives_other_failures_and_unknown_fleets() -> None:
    warnings: list[str] = []

    class Unreachable(FakeEcs):
        def describe_services(self, **_: Any) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://ecs")

    waker = Waker(
        Unreachable(), cluster="c", services={"map": Service("svc", 8)}, warn=warnings.append
    )
    waker("map", 1)
    waker("reduce", 1)
    assert len(warnings) == 1


def test_waker_uses_each_fleets_own_maximum() -> None:
    ecs = FakeEcs()
    waker = Waker(ecs, cluster="c", services={"reduce": Service("r", 2)})
    waker("reduce", 5)
    assert ecs.updates == [2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_protection_is_renewed_for_work_longer_than_its_expiry() -> None:
    clock = Clock()
    protection = TaskProtection(agent_uri="", clock=clock)
    sets: list[float] = []
    real_done = protection._done

    def record(on: bool) -> None:
        if on:
            sets.append(clock.now)
        real_done(on)

    protection._done = record  # type: ignore[method-assign]
    protection.hold()
    protection.renew_if_due()
    clock.now += RENEW_AFTER_S - 1
    protection.renew_if_due()
    assert len(sets) == 1
    clock.now += 1
    protection.renew_if_due()
    clock.now += RENEW_AFTER_S
    protection.renew_if_due()
    assert len(sets) == 3
    protection.release()
    clock.now += 10 * RENEW_AFTER_S
    protection.renew_if_due()
    assert len(sets) == 3 and not protection.enabled
