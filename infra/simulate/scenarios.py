"""The scenarios the simulator runs, and what it reports of each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from infra.simulate.model import Conditions, Event, Job, Simulation
from infra.simulate.template import Stack
from worker import prices

HOUR_S = 3600
CHUNK_S = 20
NOISE = {"notvisible_zeros_absent": True, "spurious_every_min": 20}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    jobs: tuple[Job, ...] = ()
    horizon_s: int = 4 * HOUR_S
    first_deploy: bool = False
    # Run the whole horizon even once everything is at rest.
    full_horizon: bool = False
    conditions: Conditions = field(default_factory=Conditions)


def scenarios(conditions: Conditions | None = None) -> list[Scenario]:
    """Every scenario starts from a stack whose queues have been idle for six
    hours or more (their metrics lag when they wake), unless it is the first
    deploy, whose queues are new."""
    base = conditions or Conditions()
    noisy = replace(base, **NOISE)
    one = (Job(chunks=1, chunk_s=CHUNK_S),)
    big = (Job(chunks=10_000, chunk_s=CHUNK_S),)
    return [
        Scenario(
            "idle-day", "an idle day", horizon_s=24 * HOUR_S, full_horizon=True, conditions=base
        ),
        Scenario(
            "first-deploy",
            "first deploy, both services at desired 1, empty queues",
            first_deploy=True,
            horizon_s=3 * HOUR_S,
            conditions=base,
        ),
        Scenario("one-chunk", "1-chunk job after 6 idle hours", one, 3 * HOUR_S, conditions=base),
        Scenario("10k-chunks", "10,000 chunks of 20 s", big, 12 * HOUR_S, conditions=base),
        Scenario(
            "second-job",
            "3-chunk job, then another 3 min after the map fleet reached zero",
            (
                Job(chunks=3, chunk_s=CHUNK_S),
                Job(chunks=3, chunk_s=CHUNK_S, after_map_rest_s=180),
            ),
            6 * HOUR_S,
            conditions=base,
        ),
        Scenario(
            "one-chunk-noisy",
            "1-chunk job, NotVisible zeros absent, a spurious 1 every 20 min",
            one,
            3 * HOUR_S,
            conditions=noisy,
        ),
        Scenario(
            "10k-chunks-noisy",
            "10,000 chunks, NotVisible zeros absent, a spurious 1 every 20 min",
            big,
            12 * HOUR_S,
            conditions=noisy,
        ),
    ]


@dataclass
class Result:
    name: str
    title: str
    jobs_done: bool
    # Seconds from each job's submission to the first running map task.
    first_map_task_s: list[int | None]
    peak_map: int
    peak_reduce: int
    # Seconds from the first submission until the map fleet ran its maximum.
    map_max_after_s: int | None
    task_minutes: dict[str, float]
    usd_fargate: float
    usd_spot: float
    # Minutes from each fleet's last message done (or the start, with none)
    # to zero tasks; None if the fleet never got there.
    rest_min: dict[str, float | None]
    interrupted: list[dict[str, Any]]
    below_need: list[dict[str, Any]]
    timeline: list[tuple[int, dict[str, int]]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("timeline")
        return out


def run(stack: Stack, scenario: Scenario) -> Result:
    sim = Simulation(
        stack, list(scenario.jobs), scenario.conditions, first_deploy=scenario.first_deploy
    )
    sim.run(scenario.horizon_s, settle_s=scenario.horizon_s if scenario.full_horizon else HOUR_S)
    return summarize(sim, scenario)


def summarize(sim: Simulation, scenario: Scenario) -> Result:
    minutes = {name: sim.billed(name) / 60 for name in sim.stack.fleets}
    usd = sum(
        sim.billed(name) / 3600 * prices.fargate_task_hour_usd(vcpu=f.vcpu, memory_gb=f.memory_gb)
        for name, f in sim.stack.fleets.items()
    )
    rest: dict[str, float | None] = {}
    for name in sim.stack.fleets:
        rested = sim.rested_s(name)
        since = sim.last_done_s[name] or 0
        rest[name] = None if rested is None else round(max(0, rested - since) / 60, 1)
    first_submit = next((j.submitted_s for j in sim.jobs if j.submitted_s is not None), None)
    reached = sim.max_reached_s["map"]
    return Result(
        name=scenario.name,
        title=scenario.title,
        jobs_done=all(j.done_s is not None for j in sim.jobs),
        first_map_task_s=[
            None
            if j.first_map_task_s is None or j.submitted_s is None
            else j.first_map_task_s - j.submitted_s
            for j in sim.jobs
        ],
        peak_map=sim.peak["map"],
        peak_reduce=sim.peak["reduce"],
        map_max_after_s=(
            None if reached is None or first_submit is None else max(0, reached - first_submit)
        ),
        task_minutes={k: round(v, 1) for k, v in minutes.items()},
        usd_fargate=round(usd, 4),
        usd_spot=round(usd * (1 - prices.FARGATE_SPOT_DISCOUNT), 4),
        rest_min=rest,
        interrupted=[_event(e) for e in sim.events if e.what == "interrupted"],
        below_need=[_event(e) for e in sim.events if e.what == "below need"],
        timeline=_until_quiet(sim),
    )


def _until_quiet(sim: Simulation) -> list[tuple[int, dict[str, int]]]:
    """The timeline up to ten minutes after the last change, for plots."""
    last = 0
    for i in range(1, len(sim.timeline)):
        if sim.timeline[i][1] != sim.timeline[i - 1][1]:
            last = sim.timeline[i][0]
    return [(t, row) for t, row in sim.timeline if t <= last + 600]


def _event(e: Event) -> dict[str, Any]:
    return {"t_s": e.t_s, "fleet": e.fleet, "detail": e.detail}


def run_all(stack: Stack, chosen: list[Scenario] | None = None) -> list[Result]:
    return [run(stack, s) for s in (chosen or scenarios())]
