"""The fleets' behaviour as numbers, from the simulator run on the template
the test suite synthesizes (and on a second configuration); and the
simulator itself, on a hand-written template with the rules Drover shipped
before, which it must find wanting."""

from __future__ import annotations

import pytest

from infra.simulate import metricmath, template
from infra.simulate.model import Conditions, Job, _alarm_state
from infra.simulate.scenarios import Result, Scenario, run, run_all, scenarios
from infra.simulate.template import Alarm, Query
from tests.infra.conftest import Synthesis
from tests.infra.naive_template import naive_template

START_S = Conditions().start_delay_s
ALL = [s.name for s in scenarios()]


def by_name(results: list[Result]) -> dict[str, Result]:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def shipped(default: Synthesis) -> dict[str, Result]:
    return by_name(run_all(template.load(default.template_path)))


@pytest.fixture(scope="module")
def naive() -> dict[str, Result]:
    return by_name(run_all(template.parse(naive_template())))


def rest_limit_min(idle_s: int) -> float:
    return idle_s / 60 + 5


def test_an_idle_day_costs_nothing(shipped: dict[str, Result]) -> None:
    idle = shipped["idle-day"]
    assert sum(idle.task_minutes.values()) == 0
    assert idle.usd_fargate == 0


@pytest.mark.parametrize("name", ["one-chunk", "one-chunk-noisy"])
def test_a_one_chunk_job_runs_one_map_task_at_once(shipped: dict[str, Result], name: str) -> None:
    r = shipped[name]
    assert r.jobs_done
    assert r.peak_map == 1
    assert r.peak_reduce <= 1
    (first,) = r.first_map_task_s
    assert first is not None and first <= START_S + 10


@pytest.mark.parametrize("name", ["10k-chunks", "10k-chunks-noisy"])
def test_ten_thousand_chunks_reach_the_maximum_within_two_minutes(
    shipped: dict[str, Result], name: str, default: Synthesis
) -> None:
    r = shipped[name]
    assert r.jobs_done
    assert r.peak_map == default.deployment.settings.max_workers
    assert r.map_max_after_s is not None and r.map_max_after_s <= 120


def test_a_job_never_runs_more_map_tasks_than_chunks(shipped: dict[str, Result]) -> None:
    second = shipped["second-job"]
    assert second.jobs_done
    assert second.peak_map == 3
    assert second.first_map_task_s == [START_S, START_S]


@pytest.mark.parametrize("name", ALL)
def test_every_fleet_rests_within_the_idle_window_plus_five_minutes(
    shipped: dict[str, Result], default: Synthesis, name: str
) -> None:
    limit = rest_limit_min(default.deployment.settings.scale_in_idle_s)
    for fleet, minutes in shipped[name].rest_min.items():
        assert minutes is not None and minutes <= limit, (fleet, minutes)


@pytest.mark.parametrize("name", ALL)
def test_no_rule_undoes_a_job_or_stops_work(shipped: dict[str, Result], name: str) -> None:
    r = shipped[name]
    assert r.below_need == []
    assert r.interrupted == []


def test_a_second_configuration_keeps_the_promises(variant: Synthesis) -> None:
    stack = template.load(variant.template_path)
    limit = rest_limit_min(variant.deployment.settings.scale_in_idle_s)
    chosen = [
        s for s in scenarios() if s.name in ("first-deploy", "second-job", "10k-chunks-noisy")
    ]
    for r in run_all(stack, chosen):
        assert r.jobs_done and r.below_need == [] and r.interrupted == []
        assert all(m is not None and m <= limit for m in r.rest_min.values()), r
    assert stack.wake_max("map") == variant.deployment.settings.max_workers


# The simulator finds the old rules wanting --------------------------------


def test_it_shows_the_old_steps_over_provisioning(naive: dict[str, Result]) -> None:
    """+1 from the running count every minute while a 300 s maximum stays
    above the threshold: a 3-chunk job on a warm queue gets twice as many
    tasks, a 1-partition reduce two reducers."""
    second = naive["second-job"]
    assert second.peak_map >= 5
    assert second.peak_reduce == 2


@pytest.mark.parametrize("name", ["first-deploy", "one-chunk", "one-chunk-noisy"])
def test_it_shows_the_old_idle_rule_resting_late(naive: dict[str, Result], name: str) -> None:
    """SQS's silence after six idle hours (or on a new queue) and a spurious
    in-flight 1 each hold off a 15-of-15 idle alarm that reads SQS only."""
    limit = rest_limit_min(900)
    assert max(m or float("inf") for m in naive[name].rest_min.values()) > limit


def test_it_shows_a_lingering_idle_alarm_cancelling_a_wake() -> None:
    """An ExactCapacity 0 policy whose cooldown is shorter than the minutes
    its alarm stays in ALARM after a scale-in sets a job that came meanwhile
    back to zero."""
    stack = template.parse(naive_template(idle_cooldown_s=60))
    soon = Scenario(
        "soon",
        "a second job a minute after the map fleet reached zero",
        (Job(chunks=3, chunk_s=20), Job(chunks=3, chunk_s=20, after_map_rest_s=60)),
        3 * 3600,
    )
    r = run(stack, soon)
    assert r.below_need and r.below_need[0]["fleet"] == "map"
    assert r.first_map_task_s[1] is not None and r.first_map_task_s[1] > START_S + 10


# Pieces of the model, against the documents' own examples -----------------


def alarm(n: int, m: int, missing: str) -> Alarm:
    return Alarm("a", (Query("q"),), 1.0, "GreaterThanOrEqualToThreshold", n, m, missing, ())


@pytest.mark.parametrize(
    ("n", "m", "points", "breaching", "not_breaching"),
    [
        # CloudWatch user guide, "How alarm state is evaluated when data is
        # missing": datapoints oldest first, 0 fine, X breaching, - missing.
        (3, 3, "0 - X - X", "OK", "OK"),
        (3, 3, "0 - - - -", "OK", "OK"),
        (3, 3, "- - - - -", "ALARM", "OK"),
        (3, 3, "0 X X - X", "ALARM", "ALARM"),
        (3, 3, "- - - - X", "ALARM", "OK"),
        (3, 3, "X - - - -", "ALARM", "OK"),
        (3, 2, "0 - X - X", "ALARM", "ALARM"),
        (3, 2, "0 0 X 0 X", "ALARM", "ALARM"),
        (3, 2, "0 - X - -", "ALARM", "OK"),
        (3, 2, "- - - - 0", "ALARM", "OK"),
        (3, 2, "- - - - X", "ALARM", "OK"),
    ],
)
def test_alarm_states_follow_the_documented_examples(
    n: int, m: int, points: str, breaching: str, not_breaching: str
) -> None:
    values = [{"0": 0.0, "X": 5.0, "-": None}[p] for p in points.split()][::-1]
    assert _alarm_state(alarm(n, m, "breaching"), values, "OK") == breaching
    assert _alarm_state(alarm(n, m, "notBreaching"), values, "OK") == not_breaching


@pytest.mark.parametrize(
    ("expression", "env", "expected"),
    [
        # Between two series a missing value counts as 0; with a constant it
        # stays missing: a gap in SQS's metrics does not read as empty.
        ("visible + inflight", {"visible": 3.0, "inflight": None}, 3.0),
        ("visible + inflight", {"visible": None, "inflight": None}, None),
        ("(visible + inflight) == 0", {"visible": None, "inflight": None}, None),
        (
            "IF(tasks > 0 AND (visible + inflight) == 0, 1, 0)",
            {"tasks": 2.0, "visible": None, "inflight": None},
            0.0,
        ),
        ("IF(FILL(busy, 1) == 0, 1, 0)", {"busy": None}, 0.0),
        ("IF(FILL(busy, 1) == 0, 1, 0)", {"busy": 0.0}, 1.0),
        ("IF(FILL(v, 0) > FILL(t, 0), FILL(v, 0), 0)", {"v": 7.0, "t": None}, 7.0),
        ("IF(FILL(v, 0) > FILL(t, 0), FILL(v, 0), 0)", {"v": 2.0, "t": 3.0}, 0.0),
        ("v / t", {"v": 2.0, "t": 0.0}, None),
    ],
)
def test_metric_math_keeps_missing_values_missing(
    expression: str, env: dict[str, float | None], expected: float | None
) -> None:
    assert metricmath.evaluate(metricmath.parse(expression), env) == expected
