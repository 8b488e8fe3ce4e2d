"""The fleets scale from zero on the first message, never on CPU, and back
to zero only once nothing is visible or in flight for the idle window."""

from __future__ import annotations

import math

import pytest
from aws_cdk.assertions import Match

from infra.constructs.fleet import scale_out_intervals
from tests.infra.conftest import VARIANT_CONTEXT, Synthesis
from tests.infra.lookup import Fleet, fleet, props, resources
from worker import settings as cfg
from worker.settings import ScalingStep

COMMANDS = ("map", "reduce")


def scale_out_policy(s: Synthesis, f: Fleet) -> tuple[dict, dict]:
    """The fleet's ChangeInCapacity policy and the one alarm that drives it."""
    (policy_id,) = [
        k
        for k, v in f.scaling_policies(s.raw).items()
        if v["Properties"]["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ChangeInCapacity"
    ]
    (alarm,) = f.alarms_acting_on(s.raw, policy_id).values()
    return props(s.raw, policy_id), alarm["Properties"]


def idle_policy(s: Synthesis, f: Fleet) -> tuple[dict, dict]:
    (policy_id,) = [
        k
        for k, v in f.scaling_policies(s.raw).items()
        if v["Properties"]["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ExactCapacity"
    ]
    (alarm,) = f.alarms_acting_on(s.raw, policy_id).values()
    return props(s.raw, policy_id), alarm["Properties"]


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


@pytest.mark.parametrize("command", COMMANDS)
def test_first_visible_message_adds_a_task(default: Synthesis, command: str) -> None:
    """The pattern's default waits for 100 messages: a fleet at zero with
    fewer would never wake."""
    policy, alarm = scale_out_policy(default, fleet(default.raw, command))
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    first = policy["StepScalingPolicyConfiguration"]["StepAdjustments"][0]
    assert first["MetricIntervalLowerBound"] == 0
    assert first["ScalingAdjustment"] >= 1


@pytest.mark.parametrize("command", COMMANDS)
def test_scale_out_steps_are_the_settings_steps(default: Synthesis, command: str) -> None:
    policy, alarm = scale_out_policy(default, fleet(default.raw, command))
    threshold = alarm["Threshold"]
    expected = []
    for step in default.deployment.settings.scale_out_steps:
        adjustment = {
            "MetricIntervalLowerBound": step.lower - threshold,
            "ScalingAdjustment": step.change,
        }
        if step.upper is not None:
            adjustment["MetricIntervalUpperBound"] = step.upper - threshold
        expected.append(adjustment)
    config = policy["StepScalingPolicyConfiguration"]
    assert config["StepAdjustments"] == expected
    assert config["Cooldown"] == cfg.SCALE_OUT_COOLDOWN_S


def test_no_cpu_target_tracking(default: Synthesis) -> None:
    """CPU target tracking scales I/O-bound workers in mid-message and out
    into duplicate work (aws-cdk issue 20706)."""
    default.template.resource_properties_count_is(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"PolicyType": Match.not_("StepScaling")},
        0,
    )
    assert not any(
        a["Properties"].get("MetricName") == "CPUUtilization"
        for a in resources(default.raw, "AWS::CloudWatch::Alarm").values()
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_nothing_scales_in_on_visible_messages_alone(default: Synthesis, command: str) -> None:
    f = fleet(default.raw, command)
    for policy_id, policy in f.scaling_policies(default.raw).items():
        for alarm in f.alarms_acting_on(default.raw, policy_id).values():
            if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible":
                adjustments = policy["Properties"]["StepScalingPolicyConfiguration"]
                assert all(a["ScalingAdjustment"] > 0 for a in adjustments["StepAdjustments"])
                assert alarm["Properties"]["ComparisonOperator"].startswith("GreaterThan")


@pytest.mark.parametrize("command", COMMANDS)
def test_scale_in_needs_an_empty_backlog_in_flight_included(
    default: Synthesis, command: str
) -> None:
    f = fleet(default.raw, command)
    policy, alarm = idle_policy(default, f)
    assert policy["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 0}
    ]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    watched = {
        m["MetricStat"]["Metric"]["MetricName"]: m for m in alarm["Metrics"] if "MetricStat" in m
    }
    visible = watched["ApproximateNumberOfMessagesVisible"]
    in_flight = watched["ApproximateNumberOfMessagesNotVisible"]
    for metric in (visible, in_flight):
        assert [d["Value"] for d in metric["MetricStat"]["Metric"]["Dimensions"]] == [
            {"Fn::GetAtt": [f.queue, "QueueName"]}
        ]
        assert metric["Id"] in expression
    assert f"({visible['Id']} + {in_flight['Id']}) == 0" in expression
    # True only while tasks run, so the alarm is not still in ALARM (where
    # CloudWatch repeats scaling actions every minute) when submit wakes an
    # idle fleet.
    tasks = watched["CPUUtilization"]
    assert tasks["MetricStat"]["Stat"] == "SampleCount"
    assert f"{tasks['Id']} > 0" in expression
    assert set(metrics) == {visible["Id"], in_flight["Id"], tasks["Id"]} | {
        m["Id"] for m in alarm["Metrics"] if "Expression" in m
    }
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # A gap in SQS metrics (up to 15 minutes when a queue turns active)
    # must not read as an idle queue.
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("fixture", "idle_s"),
    [("default", cfg.load().scale_in_idle_s), ("variant", VARIANT_CONTEXT["scaleInIdleSeconds"])],
)
def test_idle_window_covers_the_configured_seconds(
    request: pytest.FixtureRequest, fixture: str, idle_s: int
) -> None:
    s: Synthesis = request.getfixturevalue(fixture)
    for command in COMMANDS:
        _, alarm = idle_policy(s, fleet(s.raw, command))
        periods = alarm["EvaluationPeriods"]
        metric_periods = {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m}
        (period,) = metric_periods
        assert alarm["DatapointsToAlarm"] == periods
        assert periods == math.ceil(idle_s / period)
        assert periods * period >= idle_s


def test_stack_scales_like_the_local_mode(default: Synthesis) -> None:
    """The local fleet supervisor reads worker.settings.load(); the stack
    must scale by the same numbers."""
    local = cfg.load()
    for command, max_tasks in (("map", local.max_workers), ("reduce", local.max_reducers)):
        f = fleet(default.raw, command)
        assert props(default.raw, f.scalable_target)["MaxCapacity"] == max_tasks
        policy, alarm = scale_out_policy(default, f)
        steps = [
            ScalingStep(
                lower=a["MetricIntervalLowerBound"] + alarm["Threshold"],
                upper=(
                    a["MetricIntervalUpperBound"] + alarm["Threshold"]
                    if "MetricIntervalUpperBound" in a
                    else None
                ),
                change=a["ScalingAdjustment"],
            )
            for a in policy["StepScalingPolicyConfiguration"]["StepAdjustments"]
        ]
        assert tuple(steps) == local.scale_out_steps
        for visible in (0, 1, 99, 100, 499, 500, 10_000):
            change = next((st.change for st in steps if st.matches(visible)), 0)
            assert change == cfg.scaling_change(local.scale_out_steps, visible)
        _, idle = idle_policy(default, f)
        assert idle["EvaluationPeriods"] * 60 == local.scale_in_idle_s
        queue = props(default.raw, f.queue)
        assert queue["RedrivePolicy"]["maxReceiveCount"] == local.max_receive_count
        assert queue["VisibilityTimeout"] == local.visibility_timeout_s


def test_scale_out_intervals_add_a_no_op_below_the_first_step() -> None:
    """Step scaling needs two intervals; one scale-out step must still work
    without inventing a scale-in step."""
    intervals = scale_out_intervals([ScalingStep(lower=1, change=1)])
    assert [(i.lower, i.upper, i.change) for i in intervals] == [(None, 1, 0), (1, None, 1)]


@pytest.mark.parametrize(
    "steps",
    [
        [],
        [ScalingStep(upper=0, change=-1), ScalingStep(lower=1, change=1)],
        [ScalingStep(lower=0, change=1)],
        [ScalingStep(lower=1, upper=5, change=0), ScalingStep(lower=5, change=2)],
    ],
)
def test_scale_out_intervals_refuse_scale_in_or_no_op_steps(steps: list[ScalingStep]) -> None:
    with pytest.raises(ValueError):
        scale_out_intervals(steps)
