"""Dead letters raise an alarm (mailed when alarmEmail is set), and the
dashboard shows depths, tasks, dead letters and throughput."""

from __future__ import annotations

import json

from tests.infra.conftest import VARIANT_CONTEXT, Synthesis
from tests.infra.lookup import fleet, refs, resources


def test_an_alarm_fires_on_the_first_dead_letter(default: Synthesis) -> None:
    (topic,) = resources(default.raw, "AWS::SNS::Topic")
    for command in ("map", "reduce"):
        dlq = fleet(default.raw, command).dead_letter_queue
        (alarm,) = [
            a["Properties"]
            for a in resources(default.raw, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Dimensions") and dlq in refs(a["Properties"]["Dimensions"])
        ]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Threshold"] == 1
        assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_alarm_topic_refuses_plain_http(default: Synthesis) -> None:
    (policy,) = resources(default.raw, "AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_email_subscription_only_when_configured(default: Synthesis, variant: Synthesis) -> None:
    assert default.deployment.settings.alarm_email is None
    default.template.resource_count_is("AWS::SNS::Subscription", 0)
    variant.template.resource_count_is("AWS::SNS::Subscription", 1)
    variant.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": VARIANT_CONTEXT["alarmEmail"]},
    )


def test_dashboard_shows_depths_tasks_dead_letters_and_throughput(default: Synthesis) -> None:
    (dashboard,) = resources(default.raw, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    mappers, reducers = fleet(default.raw, "map"), fleet(default.raw, "reduce")
    for needle in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "RunningTaskCount",
        "NumberOfMessagesDeleted",
        mappers.queue,
        reducers.queue,
        mappers.dead_letter_queue,
        reducers.dead_letter_queue,
        mappers.service,
        reducers.service,
    ):
        assert needle in body


def test_dashboard_is_named_after_the_stack(default: Synthesis, variant: Synthesis) -> None:
    """The README sends operators to the dashboard by the stack's name."""
    for s in (default, variant):
        (dashboard,) = resources(s.raw, "AWS::CloudWatch::Dashboard").values()
        assert dashboard["Properties"]["DashboardName"] == s.stack.stack_name
