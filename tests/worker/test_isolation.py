"""How the worker watches its work process: the time limit, a job that no
longer wants the work, a work process that dies. A scripted work process
and a fake clock stand in for the real ones (tests/reliability has those)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from worker.consumer import DeadLetter, Delete, Delivery, Retry, Unavailable, Verdict
from worker.isolation import (
    Isolated,
    WorkProcessDied,
    delivery_from_wire,
    delivery_to_wire,
    verdict_from_wire,
    verdict_to_wire,
)

DELIVERY = Delivery(message_id="m-1", body="{}", receives=2, last_receive=False)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Scripted:
    """A work process that answers after `answer_after_s` (never, if None),
    or dies then if `dies`."""

    clock: Clock
    answer_after_s: float | None = None
    verdict: Verdict = field(default_factory=Delete)
    dies: bool = False
    ready: bool = True
    killed: bool = False
    sent: list[Delivery] = field(default_factory=list)

    pid = 4242
    alive = True

    def wait_ready(self, timeout_s: float) -> None:
        if not self.ready:
            raise Unavailable("the work process could not start: exited with code 1")

    def send(self, delivery: Delivery) -> None:
        self.sent.append(delivery)
        self.started = self.clock.now

    def answer(self, timeout_s: float) -> Verdict | None:
        due = None if self.answer_after_s is None else self.started + self.answer_after_s
        if due is not None and self.clock.now + max(0.0, timeout_s) >= due:
            self.clock.now = max(self.clock.now, due)
            if self.dies:
                raise WorkProcessDied("the work process was killed by SIGKILL (out of memory?)")
            return self.verdict
        self.clock.now += max(0.0, timeout_s)
        return None

    def kill(self) -> None:
        self.killed = True

    def signal_kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        pass


@dataclass
class Supervisor:
    cancelled_at: float | None = None
    clock: Clock | None = None
    checks: list[float] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)

    def abandoned(self, delivery: Delivery) -> Verdict | None:
        assert self.clock is not None
        self.checks.append(self.clock.now)
        if self.cancelled_at is not None and self.clock.now >= self.cancelled_at:
            return Delete("dropped")
        return None

    def stopped(self, delivery: Delivery, error: str) -> Verdict:
        self.stops.append(error)
        return Retry(4)


def isolated(clock: Clock, supervisor: Supervisor, *processes: Scripted) -> Isolated:
    queue = list(processes)
    supervisor.clock = clock
    return Isolated(
        start=lambda: queue.pop(0),  # type: ignore[arg-type,return-value]
        supervisor=supervisor,
        limit_s=30,
        check_every_s=5,
        clock=clock,
    )


def test_an_answer_within_the_limit_is_the_verdict() -> None:
    clock, supervisor = Clock(), Supervisor()
    process = Scripted(clock, answer_after_s=12, verdict=DeadLetter("JobError: x"))
    handler = isolated(clock, supervisor, process)
    assert handler.handle(DELIVERY) == DeadLetter("JobError: x")
    assert process.sent == [DELIVERY] and not process.killed
    # The job was looked at every 5 s while the work ran, never before.
    assert supervisor.checks == [5, 10]
    assert supervisor.stops == []


def test_work_past_the_limit_is_killed_and_recorded_then_replaced() -> None:
    clock, supervisor = Clock(), Supervisor()
    stuck, fresh = Scripted(clock), Scripted(clock, answer_after_s=1)
    handler = isolated(clock, supervisor, stuck, fresh)
    assert handler.handle(DELIVERY) == Retry(4)
    assert stuck.killed
    assert clock.now == 30
    (error,) = supervisor.stops
    assert error.startswith("TimeLimit: still running after 30 s")
    # The next message gets a new work process.
    assert handler.handle(DELIVERY) == Delete()
    assert fresh.sent == [DELIVERY]


def test_work_of_a_cancelled_job_is_killed_at_the_next_look() -> None:
    clock, supervisor = Clock(), Supervisor(cancelled_at=7)
    process = Scripted(clock)
    handler = isolated(clock, supervisor, process)
    assert handler.handle(DELIVERY) == Delete("dropped")
    assert process.killed and clock.now == 10
    assert supervisor.stops == []


def test_a_work_process_that_dies_is_a_failed_attempt_not_a_dead_worker() -> None:
    clock, supervisor = Clock(), Supervisor()
    dying, fresh = Scripted(clock, answer_after_s=3, dies=True), Scripted(clock, answer_after_s=1)
    handler = isolated(clock, supervisor, dying, fresh)
    assert handler.handle(DELIVERY) == Retry(4)
    assert supervisor.stops == [
        "WorkerDied: the work process was killed by SIGKILL (out of memory?)"
    ]
    assert handler.handle(DELIVERY) == Delete()


def test_a_work_process_that_cannot_start_makes_the_handler_unavailable() -> None:
    clock, supervisor = Clock(), Supervisor()
    handler = isolated(clock, supervisor, Scripted(clock, ready=False))
    with pytest.raises(Unavailable, match="could not start"):
        handler.open()


@pytest.mark.parametrize("verdict", [Delete("duplicate"), Retry(8), DeadLetter("TimeLimit: y")])
def test_verdicts_and_deliveries_cross_the_pipe_unchanged(verdict: Verdict) -> None:
    assert verdict_from_wire(verdict_to_wire(verdict)) == verdict
    assert delivery_from_wire(delivery_to_wire(DELIVERY)) == DELIVERY


def test_an_error_in_the_work_process_raises_in_the_worker() -> None:
    with pytest.raises(RuntimeError, match="KeyError: 'x'"):
        verdict_from_wire(b'{"error": "KeyError: \'x\'"}')
