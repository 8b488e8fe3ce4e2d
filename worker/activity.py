"""Whether this worker held a message, reported for the fleet's idle rule.

Every ACTIVITY_REPORT_S the worker writes one line to stdout in CloudWatch's
embedded metric format: the metric `BusyWorkers` of the fleet, 1 if it held a
message at any moment since the last report, else 0. On Fargate the awslogs
driver sends the line to CloudWatch Logs, which turns it into a metric; no
API call and no permission beyond the log stream the task already writes.

The idle alarm (infra/constructs/fleet.py) reads a minute as idle only when
reports came and every one was 0. SQS's own metrics vanish for up to 15
minutes when a queue wakes from six idle hours, and a gap must never read as
idle: the workers' reports have no such gap, so a fleet still rests on time
after its first job of the day. A worker that stops reporting (it died, or
it is stuck) never counts as idle.

Outside ECS, or where the stack did not name the fleet, nothing is written.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from worker import names
from worker import settings as cfg


def emf_line(*, fleet: str, busy: bool, timestamp_ms: int) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": names.ACTIVITY_NAMESPACE,
                        "Dimensions": [[names.ACTIVITY_DIMENSION]],
                        "Metrics": [{"Name": names.ACTIVITY_METRIC, "Unit": "Count"}],
                    }
                ],
            },
            names.ACTIVITY_DIMENSION: fleet,
            names.ACTIVITY_METRIC: int(busy),
        },
        separators=(",", ":"),
    )


class ActivityReport:
    """Call `busy()` whenever the worker takes a message and `tick(holding)`
    often (the heartbeat thread does); a line is written every `every_s`."""

    def __init__(
        self,
        fleet: str | None,
        *,
        out: TextIO | None = None,
        every_s: float = cfg.ACTIVITY_REPORT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet or None
        self.out = out
        self.every_s = every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._busy = False
        self._last = clock()

    def busy(self) -> None:
        with self._lock:
            self._busy = True

    def tick(self, holding: bool) -> None:
        """Report now if a report is due; `holding` says whether a message
        is in hand at this moment."""
        if self.fleet is None:
            return
        now = self.clock()
        with self._lock:
            if holding:
                self._busy = True
            if now - self._last < self.every_s:
                return
            busy, self._busy, self._last = self._busy, holding, now
        out = self.out or sys.stdout
        out.write(emf_line(fleet=self.fleet, busy=busy, timestamp_ms=int(now * 1000)) + "\n")
        out.flush()
