"""The workers' activity reports, the idle rule's evidence."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from worker import names
from worker.activity import ActivityReport


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reports(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_activity_reports_in_embedded_metric_format() -> None:
    clock, out = Clock(), io.StringIO()
    activity = ActivityReport("Drover-map", out=out, every_s=20, clock=clock)
    activity.tick(holding=False)
    assert out.getvalue() == ""
    clock.now += 20
    activity.tick(holding=False)
    (line,) = reports(out)
    metrics = line["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Namespace"] == names.ACTIVITY_NAMESPACE
    assert metrics["Dimensions"] == [[names.ACTIVITY_DIMENSION]]
    assert metrics["Metrics"][0]["Name"] == names.ACTIVITY_METRIC
    assert line[names.ACTIVITY_DIMENSION] == "Drover-map"
    assert line[names.ACTIVITY_METRIC] == 0
    assert line["_aws"]["Timestamp"] == int(clock.now * 1000)


@pytest.mark.parametrize("holding_at_report", [True, False])
def test_a_message_taken_between_reports_makes_the_next_one_busy(holding_at_report: bool) -> None:
    clock, out = Clock(), io.StringIO()
    activity = ActivityReport("f", out=out, every_s=20, clock=clock)
    activity.busy()
    clock.now += 20
    activity.tick(holding=holding_at_report)
    clock.now += 20
    activity.tick(holding=False)
    assert [r[names.ACTIVITY_METRIC] for r in reports(out)] == [1, int(holding_at_report)]


def test_no_fleet_name_no_reports() -> None:
    clock, out = Clock(), io.StringIO()
    activity = ActivityReport(None, out=out, clock=clock)
    clock.now += 3600
    activity.tick(holding=True)
    assert out.getvalue() == ""
