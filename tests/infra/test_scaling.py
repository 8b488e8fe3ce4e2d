"""The fleets' scaling rules as synthesized: exact capacities on the backlog
(visible and in flight), never CPU, and rest only on the workers' own
reports. How they behave under CloudWatch's semantics is the simulator's
part (test_simulate.py); these tests pin what the simulator relies on."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from tests.infra.conftest import VARIANT_CONTEXT, Synthesis
from tests.infra.lookup import Fleet, fleet, props, resources
from worker import names
from worker import settings as cfg

COMMANDS = ("map", "reduce")
INFLIGHT = "ApproximateNumberOfMessagesNotVisible"
VISIBLE = "ApproximateNumberOfMessagesVisible"


def policies(s: Synthesis, f: Fleet) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(policy properties, properties of the one alarm that drives it)."""
    out = []
    for policy_id, policy in f.scaling_policies(s.raw).items():
        (alarm,) = f.alarms_acting_on(s.raw, policy_id).values()
        out.append((policy["Properties"], alarm["Properties"]))
    return out


def sizing(s: Synthesis, f: Fleet) -> tuple[dict[str, Any], dict[str, Any]]:
    (found,) = [
        (p, a)
        for p, a in policies(s, f)
        if any(
            st["ScalingAdjustment"] > 0
            for st in p["StepScalingPolicyConfiguration"]["StepAdjustments"]
        )
    ]
    return found


def idle(s: Synthesis, f: Fleet) -> tuple[dict[str, Any], dict[str, Any]]:
    (found,) = [
        (p, a)
        for p, a in policies(s, f)
        if [
            st["ScalingAdjustment"] for st in p["StepScalingPolicyConfiguration"]["StepAdjustments"]
        ]
        == [0]
    ]
    return found


def watched(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The alarm's metrics by name, with their stat."""
    return {
        m["MetricStat"]["Metric"]["MetricName"]: m
        for m in alarm.get("Metrics", [])
        if "MetricStat" in m
    }


def expression(alarm: dict[str, Any]) -> str:
    (found,) = [m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData", True)]
    return found


def step_result(policy: dict[str, Any], threshold: float, value: float) -> int | None:
    """The capacity a step policy sets for an alarm value, by Application
    Auto Scaling's rule (bounds relative to the threshold; above it the lower
    bound is inclusive), or None when no step applies."""
    offset = value - threshold
    for st in policy["StepScalingPolicyConfiguration"]["StepAdjustments"]:
        lower = st.get("MetricIntervalLowerBound", -math.inf)
        upper = st.get("MetricIntervalUpperBound", math.inf)
        inside = lower <= offset < upper if offset >= 0 else lower < offset <= upper
        if inside:
            return int(st["ScalingAdjustment"])
    return None


@pytest.mark.parametrize("command", COMMANDS)
def test_fleet_scales_between_zero_and_its_maximum(default: Synthesis, command: str) -> None:
    settings = default.deployment.settings
    f = fleet(default.raw, command)
    target = props(default.raw, f.scalable_target)
    expected_max = settings.max_workers if command == "map" else settings.max_reducers
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, expected_max)


def test_max_workers_comes_from_context(variant: Synthesis) -> None:
    target = props(variant.raw, fleet(variant.raw, "map").scalable_target)
    assert target["MaxCapacity"] == VARIANT_CONTEXT["maxWorkers"]


def test_no_cpu_target_tracking(default: Synthesis) -> None:
    """CPU target tracking scales I/O-bound workers in mid-message and out
    into duplicate work (aws-cdk issue 20706). ECS's CPU metric serves only
    as a count of running tasks (its SampleCount), never as a utilization."""
    found = resources(default.raw, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    assert found and all(p["Properties"]["PolicyType"] == "StepScaling" for p in found)
    for alarm in resources(default.raw, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"].get("MetricName") != "CPUUtilization"
        cpu = watched(alarm["Properties"]).get("CPUUtilization")
        assert cpu is None or cpu["MetricStat"]["Stat"] == "SampleCount"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_step_sets_an_exact_capacity(default: Synthesis, command: str) -> None:
    """CloudWatch repeats a scaling action every minute while its alarm stays
    in ALARM, and ChangeInCapacity counts from the running tasks: only
    ExactCapacity steps are harmless when repeated."""
    found = policies(default, fleet(default.raw, command))
    assert len(found) == 2
    for policy, _ in found:
        assert policy["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ExactCapacity"


@pytest.mark.parametrize("fixture", ["default", "variant"])
def test_sizing_sets_the_backlog_up_to_the_maximum(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    s: Synthesis = request.getfixturevalue(fixture)
    for command in COMMANDS:
        f = fleet(s.raw, command)
        policy, alarm = sizing(s, f)
        maximum = props(s.raw, f.scalable_target)["MaxCapacity"]
        assert len(policy["StepScalingPolicyConfiguration"]["StepAdjustments"]) <= 20
        for backlog in range(1, 3 * maximum):
            assert step_result(policy, alarm["Threshold"], backlog) == min(backlog, maximum)
        assert step_result(policy, alarm["Threshold"], 0) is None


@pytest.mark.parametrize("command", COMMANDS)
def test_sizing_counts_in_flight_messages_and_ignores_one_stray_minute(
    default: Synthesis, command: str
) -> None:
    _, alarm = sizing(default, fleet(default.raw, command))
    metrics = watched(alarm)
    assert {VISIBLE, INFLIGHT, "CPUUtilization"} <= set(metrics)
    assert metrics["CPUUtilization"]["MetricStat"]["Stat"] == "SampleCount"
    text = expression(alarm)
    for name in (VISIBLE, INFLIGHT):
        assert f"FILL({metrics[name]['Id']}, 0)" in text
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (
        cfg.SIZING_DATAPOINTS_TO_ALARM,
        cfg.SIZING_EVALUATION_PERIODS,
    )
    assert alarm["DatapointsToAlarm"] >= 2
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("command", COMMANDS)
def test_nothing_scales_in_on_visible_messages_alone(default: Synthesis, command: str) -> None:
    """A rule that can lower the fleet must see in-flight messages, or it
    removes the tasks that hold them."""
    f = fleet(default.raw, command)
    maximum = props(default.raw, f.scalable_target)["MaxCapacity"]
    for policy, alarm in policies(default, f):
        steps = policy["StepScalingPolicyConfiguration"]["StepAdjustments"]
        if min(st["ScalingAdjustment"] for st in steps) < maximum:
            assert alarm.get("MetricName") is None
            assert INFLIGHT in watched(alarm)


@pytest.mark.parametrize("command", COMMANDS)
def test_rest_needs_the_workers_reports_and_an_empty_backlog(
    default: Synthesis, command: str
) -> None:
    f = fleet(default.raw, command)
    policy, alarm = idle(default, f)
    config = policy["StepScalingPolicyConfiguration"]
    assert config["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 0}]
    # Applied only when the lowest of the recent datapoints is idle.
    assert config["MetricAggregationType"] == "Minimum"
    assert config["Cooldown"] == cfg.IDLE_COOLDOWN_S
    metrics = watched(alarm)
    activity = metrics[names.ACTIVITY_METRIC]
    assert activity["MetricStat"]["Metric"]["Namespace"] == names.ACTIVITY_NAMESPACE
    (dimension,) = activity["MetricStat"]["Metric"]["Dimensions"]
    # The same fleet name the workers report under.
    assert dimension["Value"] == f.environment(default.raw)[names.ENV_ACTIVITY_FLEET]
    for name in (VISIBLE, INFLIGHT):
        assert [d["Value"] for d in metrics[name]["MetricStat"]["Metric"]["Dimensions"]] == [
            {"Fn::GetAtt": [f.queue, "QueueName"]}
        ]
    text = expression(alarm)
    # No report reads as busy: a gap in the data is never idle.
    assert f"FILL({activity['Id']}, 1) == 0" in text
    assert alarm["TreatMissingData"] == "notBreaching"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )


@pytest.mark.parametrize(
    ("fixture", "idle_s"),
    [("default", cfg.load().scale_in_idle_s), ("variant", VARIANT_CONTEXT["scaleInIdleSeconds"])],
)
def test_idle_window_covers_the_configured_seconds(
    request: pytest.FixtureRequest, fixture: str, idle_s: int
) -> None:
    s: Synthesis = request.getfixturevalue(fixture)
    for command in COMMANDS:
        _, alarm = idle(s, fleet(s.raw, command))
        (period,) = {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m}
        periods = alarm["EvaluationPeriods"]
        assert periods == math.ceil(idle_s / period)
        assert periods * period >= idle_s
        assert alarm["DatapointsToAlarm"] == periods - cfg.IDLE_SPURIOUS_MINUTES


def test_stack_scales_like_the_local_mode(default: Synthesis) -> None:
    """The local fleet supervisor reads worker.settings; the stack must
    scale by the same numbers: the same maxima, the same level for every
    backlog, the same idle window."""
    local = cfg.load()
    for command, max_tasks in (("map", local.max_workers), ("reduce", local.max_reducers)):
        f = fleet(default.raw, command)
        assert props(default.raw, f.scalable_target)["MaxCapacity"] == max_tasks
        policy, alarm = sizing(default, f)
        for backlog in (1, 2, max_tasks - 1, max_tasks, max_tasks + 1, 100, 10_000):
            assert step_result(policy, alarm["Threshold"], backlog) == cfg.scaling_level(
                backlog, max_tasks
            )
        _, idle_alarm = idle(default, f)
        assert idle_alarm["EvaluationPeriods"] * cfg.METRIC_PERIOD_S == local.scale_in_idle_s
        queue = props(default.raw, f.queue)
        assert queue["RedrivePolicy"]["maxReceiveCount"] == local.max_receive_count
        assert queue["VisibilityTimeout"] == local.visibility_timeout_s


def test_map_workers_wake_reducers_up_to_the_reducers_maximum(default: Synthesis) -> None:
    env = fleet(default.raw, "map").environment(default.raw)
    assert env[names.ENV_REDUCE_MAX_TASKS] == str(default.deployment.settings.max_reducers)


def test_reducers_wake_map_workers_up_to_their_maximum(default: Synthesis) -> None:
    env = fleet(default.raw, "reduce").environment(default.raw)
    assert env[names.ENV_MAP_MAX_TASKS] == str(default.deployment.settings.max_workers)


@pytest.mark.parametrize("max_tasks", [1, 2, 8, 19, 20, 21, 32, 100, 1000])
def test_scaling_levels_fit_one_policy_and_never_exceed_the_backlog(max_tasks: int) -> None:
    levels = cfg.scaling_levels(max_tasks)
    assert levels[0] == 1 and levels[-1] == max_tasks
    assert len(levels) <= cfg.MAX_STEP_ADJUSTMENTS
    assert all(b > a for a, b in itertools.pairwise(levels))
    if max_tasks <= cfg.MAX_STEP_ADJUSTMENTS:
        assert levels == tuple(range(1, max_tasks + 1))
    for backlog in range(0, 2 * max_tasks):
        level = cfg.scaling_level(backlog, max_tasks)
        assert level <= min(backlog, max_tasks)
        assert (level >= 1) == (backlog >= 1)
