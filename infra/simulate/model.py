"""The control loop of a deployed Drover, second by second.

What is simulated, and the reading taken where the sources leave a choice
(FIELD-NOTES, "Scaling the fleets"; the pessimistic one, said so here):

- SQS publishes one datapoint a minute per metric while a queue is active
  (messages in it, or an API call in the last six hours; long polls count).
  Gauges are sampled at the end of the minute. A queue that was inactive
  publishes nothing for 15 minutes after it turns active again (the whole
  lag, and nothing backfilled). With `notvisible_zeros_absent`, a NotVisible
  of 0 is not published; with `spurious_every_min`, NotVisible reads 1 on an
  empty queue once every so many minutes.
- ECS publishes CPUUtilization with one sample per RUNNING task a minute
  (its SampleCount is the task count), nothing with none running.
- Workers with an activity fleet name in their environment write a report
  every 20 s: 1 if they held a message since the last one.
- Every metric's datapoint for a minute becomes visible to alarms 120 s
  after the minute ends (CloudWatch's delay; the most that the documented
  evaluation range of N + 2 datapoints still tolerates).
- Alarms are evaluated every minute over N + 2 windows (the documented
  example: 3 evaluation periods retrieve 5 datapoints). With at least N real
  datapoints the most recent N are used; with fewer, the missing ones are
  filled per TreatMissingData, as few as possible. An alarm in ALARM invokes
  its scaling policies on entering ALARM and again every minute it stays.
- A step policy takes its value from the newest real datapoint only (the
  documents say "the most recent metric data points", aggregated: one is
  the reading under which MetricAggregationType protects nothing). No
  matching step, or no datapoint, does nothing. ChangeInCapacity counts
  from the RUNNING tasks, not the desired count. Results are clamped to the
  scalable target's bounds. Cooldown: a scale-out within the cooldown of the
  policy's last scale-out proceeds only if larger (the earlier one counts as
  done); a scale-in waits out the cooldown of the policy's last activity;
  a scale-out ends the pending scale-in cooldown of every policy on the same
  scalable target.
- ECS starts a task 60 s after the desired count rises (the slow end of
  Fargate's 30-60 s), stops PENDING tasks first, then RUNNING ones without
  scale-in protection, never a protected one. Fargate bills per second from
  the launch (image pull) to the stop, at least a minute.
- A worker takes one message per receive, long-polls 20 s when the queue is
  empty, is protected from the receive that brings a message until one comes
  back empty (renewed as the heartbeat does), and on SIGTERM exits when its
  current poll returns. A task stopped while holding a message is work
  interrupted.
- submit enqueues at 500 messages a second, then wakes the map fleet to
  min(chunks, the stack's maximum); the map worker that completes a job sends
  one message per partition and wakes the reduce fleet the same way.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.simulate import metricmath
from infra.simulate.template import Alarm, Fleet, MetricRef, Policy, Stack, Step
from worker import names, prices
from worker import settings as cfg

PENDING, RUNNING, STOPPED = "PENDING", "RUNNING", "STOPPED"
IDLE_CPU, BUSY_CPU = 1.0, 100.0
TIMELINE_EVERY_S = 10


@dataclass(frozen=True)
class Conditions:
    start_delay_s: int = 60
    publish_delay_s: int = 120
    evaluation_range_extra: int = 2
    reactivation_lag_s: int = 900
    inactive_after_s: int = 6 * 3600
    notvisible_zeros_absent: bool = False
    spurious_every_min: int | None = None
    spurious_phase_min: int = 7
    receive_wait_s: int = 20
    enqueue_per_s: int = 500


@dataclass(frozen=True)
class Job:
    chunks: int
    chunk_s: int
    partitions: int = 1
    reduce_s: int = 10
    at_s: int = 0
    # When set: submitted this many seconds after the map fleet, having run
    # the job before it, is back at zero tasks.
    after_map_rest_s: int | None = None


@dataclass
class Message:
    job: int
    fleet: str
    seconds: int


@dataclass
class Queue:
    visible: deque[Message] = field(default_factory=deque)
    in_flight: int = 0
    last_call_s: float = -math.inf
    silent_until_s: float = -math.inf
    counters: dict[str, int] = field(default_factory=dict)

    def call(self, t: int, c: Conditions) -> None:
        """Any API call; one on an inactive queue starts the publication lag."""
        if not self.active(t - 1, c):
            self.silent_until_s = t + c.reactivation_lag_s
        self.last_call_s = t

    def active(self, t: int, c: Conditions) -> bool:
        return bool(self.visible) or self.in_flight > 0 or t - self.last_call_s < c.inactive_after_s

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


@dataclass
class Task:
    id: int
    fleet: str
    launched_s: int
    running_s: int
    state: str = PENDING
    message: Message | None = None
    busy_until_s: int = 0
    protected: bool = False
    protection_until_s: int = 0
    renew_at_s: float = 0.0
    poll_end_s: int | None = None
    stop_at_s: int | None = None
    stopped_s: int | None = None
    busy_since_report: bool = False
    last_report_s: int = 0
    busy_this_minute: bool = False
    ran: bool = False


@dataclass
class PolicyState:
    last_activity_s: float | None = None
    last_was_scale_in: bool = False
    last_out_s: float | None = None
    last_out_adjustment: int = 0
    last_out_to: int = 0


@dataclass
class Event:
    t_s: int
    fleet: str
    what: str
    detail: str


@dataclass
class JobRun:
    spec: Job
    submitted_s: int | None = None
    first_map_task_s: int | None = None
    map_done: int = 0
    reduced: int = 0
    done_s: int | None = None


class Simulation:
    def __init__(
        self, stack: Stack, jobs: list[Job], conditions: Conditions, *, first_deploy: bool = False
    ) -> None:
        self.stack = stack
        self.c = conditions
        self.t = 0
        self.queues = {name: Queue() for name in stack.fleets}
        self.desired = {
            name: (f.initial_desired if first_deploy else f.min_tasks)
            for name, f in stack.fleets.items()
        }
        self.tasks: list[Task] = []
        # The tasks not yet stopped, a subset of `tasks`.
        self.live: list[Task] = []
        self.next_task_id = 1
        self.jobs = [JobRun(j) for j in jobs]
        self.pending_sends: deque[tuple[int, Message]] = deque()
        self.policy_state = {pid: PolicyState() for pid in stack.policies}
        self.alarm_state = {a.id: "INSUFFICIENT_DATA" for a in stack.alarms}
        self.samples: dict[tuple[str, str, str], dict[int, list[float]]] = {}
        self.events: list[Event] = []
        self.timeline: list[tuple[int, dict[str, int]]] = []
        self.last_done_s: dict[str, int | None] = {name: None for name in stack.fleets}
        self.peak = {name: 0 for name in stack.fleets}
        self.max_reached_s: dict[str, int | None] = {name: None for name in stack.fleets}
        self.parsed = {
            a.id: {q.id: metricmath.parse(q.expression) for q in a.queries if q.expression}
            for a in stack.alarms
        }
        if first_deploy:
            # A queue just created counts as one that just woke: its metrics
            # may lag too.
            for q in self.queues.values():
                q.call(0, self.c)
        self._reconcile_all()

    # Driving ---------------------------------------------------------------

    def run(self, horizon_s: int, *, settle_s: int = 3600) -> None:
        """Run to `horizon_s`, or until every job is done and both fleets
        have been at zero for `settle_s`."""
        quiet_since: int | None = None
        while self.t < horizon_s:
            self.step()
            if self._quiet():
                quiet_since = self.t if quiet_since is None else quiet_since
                if self.t - quiet_since >= settle_s:
                    break
            else:
                quiet_since = None

    def _quiet(self) -> bool:
        return (
            all(j.done_s is not None for j in self.jobs)
            and not self.pending_sends
            and not self.live
            and not any(self.desired.values())
        )

    def step(self) -> None:
        t = self.t
        self._submit_jobs(t)
        self._deliver_sends(t)
        for task in self.live:
            if task.state != STOPPED:
                self._work(task, t)
        self._reconcile_all()
        self.live = [x for x in self.live if x.state != STOPPED]
        for name in self.stack.fleets:
            running = sum(1 for x in self.live if x.fleet == name and x.state == RUNNING)
            self.peak[name] = max(self.peak[name], running)
            if running >= self.stack.fleets[name].max_tasks and self.max_reached_s[name] is None:
                self.max_reached_s[name] = t
            if name == "map" and running:
                for job in self.jobs:
                    if job.submitted_s is not None and job.first_map_task_s is None:
                        job.first_map_task_s = t
        if t % 60 == 59:
            self._publish(t // 60, t)
        if t % 60 == 0 and t > 0:
            self._evaluate_alarms(t)
        if t % TIMELINE_EVERY_S == 0:
            self._record(t)
        self.t += 1

    # Jobs and messages -----------------------------------------------------

    def _submit_jobs(self, t: int) -> None:
        for i, job in enumerate(self.jobs):
            if job.submitted_s is not None:
                continue
            spec = job.spec
            if spec.after_map_rest_s is None:
                due = t >= spec.at_s
            else:
                previous = self.jobs[i - 1]
                rested = self._fleet_rested_s("map")
                due = (
                    previous.done_s is not None
                    and rested is not None
                    and rested >= previous.done_s
                    and t >= rested + spec.after_map_rest_s
                )
            if due:
                job.submitted_s = t
                for n in range(spec.chunks):
                    at = t + n // self.c.enqueue_per_s
                    self.pending_sends.append((at, Message(i, "map", spec.chunk_s)))
                # submit wakes once the last message is queued.
                done_at = t + (spec.chunks - 1) // self.c.enqueue_per_s
                self.pending_sends.append((done_at, Message(i, "wake:map", spec.chunks)))

    def _fleet_rested_s(self, fleet: str) -> int | None:
        """Since when the fleet has had no task at all (None if it has one)."""
        if any(x.fleet == fleet and x.state != STOPPED for x in self.live):
            return None
        return max((x.stopped_s or 0 for x in self.tasks if x.fleet == fleet), default=0)

    def _deliver_sends(self, t: int) -> None:
        while self.pending_sends and self.pending_sends[0][0] <= t:
            _, message = self.pending_sends.popleft()
            if message.fleet.startswith("wake:"):
                fleet = message.fleet.split(":", 1)[1]
                self._wake(fleet, message.seconds, t, by="submit")
                continue
            queue = self.queues[message.fleet]
            queue.call(t, self.c)
            queue.visible.append(message)
            queue.count("NumberOfMessagesSent")

    def _wake(self, fleet: str, need: int, t: int, *, by: str) -> None:
        """worker.ecs.wake_service: raise to min(need, bound), never lower."""
        if fleet == "reduce" and by == "map worker":
            bound = self.stack.fleets["map"].env_int(names.ENV_REDUCE_MAX_TASKS)
            bound = bound if bound is not None else self.stack.fleets["reduce"].max_tasks
        else:
            bound = self.stack.wake_max(fleet)
        want = min(need, bound)
        if self.desired[fleet] < want:
            self._set_desired(fleet, want, t, f"wake by {by}")

    # Workers ----------------------------------------------------------------

    def _work(self, task: Task, t: int) -> None:
        if task.state == PENDING:
            if t >= task.running_s:
                task.state = RUNNING
                task.ran = True
                task.last_report_s = t
            else:
                return
        if task.stop_at_s is not None and t >= task.stop_at_s:
            self._stopped(task, t)
            return
        queue = self.queues[task.fleet]
        if task.message is not None:
            task.busy_this_minute = True
            task.busy_since_report = True
            if t >= task.busy_until_s:
                self._complete(task, t)
            else:
                self._renew_protection(task, t)
        if task.message is None and task.stop_at_s is None:
            if queue.visible:
                message = queue.visible.popleft()
                queue.in_flight += 1
                queue.call(t, self.c)
                queue.count("NumberOfMessagesReceived")
                task.message = message
                task.busy_until_s = t + message.seconds
                task.poll_end_s = None
                task.busy_this_minute = task.busy_since_report = True
                if not task.protected:
                    task.protected = True
                    task.protection_until_s = t + cfg.PROTECTION_MINUTES * 60
                    task.renew_at_s = t + cfg.PROTECTION_RENEW_AFTER_S
            elif task.poll_end_s is None:
                task.poll_end_s = t + self.c.receive_wait_s
                queue.call(t, self.c)
            elif t >= task.poll_end_s:
                queue.count("NumberOfEmptyReceives")
                task.protected = False
                task.poll_end_s = t + self.c.receive_wait_s
                queue.call(t, self.c)
        if task.protected and t >= task.protection_until_s:
            task.protected = False
        self._report(task, t)

    def _renew_protection(self, task: Task, t: int) -> None:
        if task.protected and t >= task.renew_at_s:
            task.protection_until_s = t + cfg.PROTECTION_MINUTES * 60
            task.renew_at_s = t + cfg.PROTECTION_RENEW_AFTER_S

    def _report(self, task: Task, t: int) -> None:
        fleet = self.stack.fleets[task.fleet]
        if fleet.activity_fleet is None or t - task.last_report_s < cfg.ACTIVITY_REPORT_S:
            return
        busy = task.busy_since_report
        task.busy_since_report = task.message is not None
        task.last_report_s = t
        self.samples.setdefault(("activity", task.fleet, names.ACTIVITY_METRIC), {}).setdefault(
            t // 60, []
        ).append(float(busy))

    def _complete(self, task: Task, t: int) -> None:
        message = task.message
        assert message is not None
        queue = self.queues[task.fleet]
        queue.in_flight -= 1
        queue.call(t, self.c)
        queue.count("NumberOfMessagesDeleted")
        task.message = None
        self.last_done_s[task.fleet] = t
        job = self.jobs[message.job]
        if task.fleet == "map":
            job.map_done += 1
            if job.map_done == job.spec.chunks:
                reduce_queue = self.queues["reduce"]
                reduce_queue.call(t, self.c)
                for _ in range(job.spec.partitions):
                    reduce_queue.visible.append(Message(message.job, "reduce", job.spec.reduce_s))
                    reduce_queue.count("NumberOfMessagesSent")
                self._wake("reduce", job.spec.partitions, t, by="map worker")
        else:
            job.reduced += 1
            if job.reduced == job.spec.partitions:
                job.done_s = t

    def _stopped(self, task: Task, t: int) -> None:
        task.state = STOPPED
        task.stopped_s = t

    # ECS ------------------------------------------------------------------

    def _reconcile_all(self) -> None:
        for name in self.stack.fleets:
            self._reconcile(name, self.t)

    def _reconcile(self, fleet: str, t: int) -> None:
        staying = [
            x for x in self.live if x.fleet == fleet and x.state != STOPPED and x.stop_at_s is None
        ]
        want = self.desired[fleet]
        if len(staying) < want:
            for _ in range(want - len(staying)):
                task = Task(self.next_task_id, fleet, t, t + self.c.start_delay_s, last_report_s=t)
                self.tasks.append(task)
                self.live.append(task)
                self.next_task_id += 1
            return
        excess = len(staying) - want
        if excess <= 0:
            return
        pending = [x for x in staying if x.state == PENDING]
        idle = [x for x in staying if x.state == RUNNING and not x.protected]
        for task in (pending[::-1] + idle[::-1])[:excess]:
            if task.state == PENDING:
                self._stopped(task, t)
                continue
            if task.message is not None:
                self.events.append(
                    Event(
                        t, fleet, "interrupted", f"task {task.id} asked to stop holding a message"
                    )
                )
                queue = self.queues[fleet]
                queue.in_flight -= 1
                queue.visible.appendleft(task.message)
                task.message = None
            task.stop_at_s = task.poll_end_s if task.poll_end_s is not None else t

    def _set_desired(self, fleet: str, value: int, t: int, by: str) -> None:
        before = self.desired[fleet]
        self.desired[fleet] = value
        self.events.append(Event(t, fleet, "desired", f"{before} -> {value} by {by}"))
        need = self.need(fleet)
        if value < before and value < need:
            self.events.append(
                Event(t, fleet, "below need", f"{before} -> {value} by {by}, need {need}")
            )
        self._reconcile(fleet, t)

    def need(self, fleet: str) -> int:
        queue = self.queues[fleet]
        return min(self.stack.fleets[fleet].max_tasks, len(queue.visible) + queue.in_flight)

    # Metrics ----------------------------------------------------------------

    def _publish(self, minute: int, t: int) -> None:
        start = minute * 60
        for name, queue in self.queues.items():
            counters, queue.counters = queue.counters, {}
            if not queue.active(t, self.c) or t < queue.silent_until_s:
                continue
            sqs = {
                "ApproximateNumberOfMessagesVisible": len(queue.visible),
                "NumberOfMessagesSent": counters.get("NumberOfMessagesSent", 0),
                "NumberOfMessagesReceived": counters.get("NumberOfMessagesReceived", 0),
                "NumberOfMessagesDeleted": counters.get("NumberOfMessagesDeleted", 0),
                "NumberOfEmptyReceives": counters.get("NumberOfEmptyReceives", 0),
            }
            in_flight: int | None = queue.in_flight
            every = self.c.spurious_every_min
            if in_flight == 0 and every and (minute - self.c.spurious_phase_min) % every == 0:
                in_flight = 1
            elif in_flight == 0 and self.c.notvisible_zeros_absent:
                in_flight = None
            if in_flight is not None:
                sqs["ApproximateNumberOfMessagesNotVisible"] = in_flight
            for metric, value in sqs.items():
                self.samples.setdefault(("sqs", name, metric), {})[minute] = [float(value)]
        for task in self.tasks:
            if not task.ran or (task.stopped_s is not None and task.stopped_s < start):
                continue
            if task.running_s >= start + 60:
                continue
            cpu = BUSY_CPU if task.busy_this_minute else IDLE_CPU
            self.samples.setdefault(("ecs", task.fleet, "CPUUtilization"), {}).setdefault(
                minute, []
            ).append(cpu)
            task.busy_this_minute = task.message is not None

    def datapoint(self, metric: MetricRef, start_s: int, end_s: int, now_s: int) -> float | None:
        """The statistic over [start_s, end_s) from what has been published
        by `now_s`; None when nothing has."""
        series = self.samples.get((metric.source, metric.fleet, metric.name))
        if not series:
            return None
        values: list[float] = []
        for minute in range(start_s // 60, end_s // 60):
            if minute * 60 + 60 + self.c.publish_delay_s > now_s:
                continue
            values.extend(series.get(minute, ()))
        if not values:
            return None
        return _statistic(metric.stat, values)

    # Alarms and policies ---------------------------------------------------

    def alarm_points(self, alarm: Alarm, t: int) -> list[float | None]:
        """The alarm's datapoints over its evaluation range, newest first."""
        period = alarm.period_s
        points: list[float | None] = []
        for i in range(alarm.evaluation_periods + self.c.evaluation_range_extra):
            end = t - i * period
            points.append(self._window_value(alarm, end - period, end, t))
        return points

    def _window_value(self, alarm: Alarm, start: int, end: int, now: int) -> float | None:
        env: dict[str, float | None] = {}
        for q in alarm.queries:
            if q.metric is not None:
                env[q.id] = self.datapoint(q.metric, start, end, now)
        exprs = self.parsed[alarm.id]
        present = {q.id for q in alarm.queries if q.metric is not None and env[q.id] is not None}

        def value_of(qid: str, seen: frozenset[str] = frozenset()) -> float | None:
            if qid in env:
                return env[qid]
            node = exprs[qid]
            inputs = metricmath.names(node)
            for name in inputs:
                if name in exprs and name not in env and name not in seen:
                    env[name] = value_of(name, seen | {qid})
            # No input at all gives no datapoint.
            if not (_metric_inputs(inputs, exprs) & present):
                return None
            return metricmath.evaluate(node, env)

        (returned,) = [q for q in alarm.queries if q.returned]
        return value_of(returned.id)

    def _evaluate_alarms(self, t: int) -> None:
        for alarm in self.stack.alarms:
            points = self.alarm_points(alarm, t)
            state = _alarm_state(alarm, points, self.alarm_state[alarm.id])
            self.alarm_state[alarm.id] = state
            if state != "ALARM":
                continue
            newest = next((p for p in points if p is not None), None)
            for policy_id in alarm.policies:
                self._apply(self.stack.policies[policy_id], alarm, newest, t)

    def _apply(self, policy: Policy, alarm: Alarm, value: float | None, t: int) -> None:
        if value is None:
            return
        step = _step_for(policy.steps, value - alarm.threshold)
        if step is None:
            return
        fleet = self.stack.fleets[policy.fleet]
        current = self.desired[policy.fleet]
        running = sum(1 for x in self.live if x.fleet == policy.fleet and x.state == RUNNING)
        state = self.policy_state[policy.id]
        if policy.adjustment_type == "ExactCapacity":
            target = step.adjustment
        elif policy.adjustment_type == "ChangeInCapacity":
            target = running + step.adjustment
        else:
            target = running + _percent(running, step.adjustment)
        target = max(fleet.min_tasks, min(fleet.max_tasks, target))
        if target == current:
            return
        if target > current:
            if state.last_out_s is not None and t - state.last_out_s < policy.cooldown_s:
                if policy.adjustment_type == "ExactCapacity":
                    if target <= state.last_out_to:
                        return
                elif step.adjustment <= state.last_out_adjustment:
                    return
                else:
                    target = min(
                        fleet.max_tasks, current + step.adjustment - state.last_out_adjustment
                    )
            state.last_out_s, state.last_out_adjustment, state.last_out_to = (
                t,
                step.adjustment,
                target,
            )
            for other_id, other in self.policy_state.items():
                same_target = self.stack.policies[other_id].fleet == policy.fleet
                if other is not state and same_target and other.last_was_scale_in:
                    other.last_activity_s = None
            state.last_was_scale_in = False
        else:
            if state.last_activity_s is not None and t - state.last_activity_s < policy.cooldown_s:
                return
            state.last_was_scale_in = True
        state.last_activity_s = t
        self._set_desired(policy.fleet, target, t, f"policy {policy.id}")

    # Recording ------------------------------------------------------------

    def _record(self, t: int) -> None:
        row: dict[str, int] = {}
        for name, queue in self.queues.items():
            row[f"{name}_running"] = sum(
                1 for x in self.live if x.fleet == name and x.state == RUNNING
            )
            row[f"{name}_tasks"] = sum(1 for x in self.live if x.fleet == name)
            row[f"{name}_desired"] = self.desired[name]
            row[f"{name}_backlog"] = len(queue.visible) + queue.in_flight
        self.timeline.append((t, row))

    def billed(self, fleet: str) -> float:
        """Task-seconds Fargate bills for the fleet so far."""
        total = 0.0
        for task in self.tasks:
            if task.fleet != fleet:
                continue
            end = task.stopped_s if task.stopped_s is not None else self.t
            total += prices.fargate_billed_s(end - task.launched_s)
        return total

    def rested_s(self, fleet: str) -> int | None:
        """When the fleet reached zero tasks for good (None if it has not)."""
        return self._fleet_rested_s(fleet)

    def fleet_of(self, name: str) -> Fleet:
        return self.stack.fleets[name]


def _metric_inputs(inputs: set[str], exprs: dict[str, metricmath.Node]) -> set[str]:
    found: set[str] = set()
    for name in inputs:
        if name in exprs:
            found |= _metric_inputs(metricmath.names(exprs[name]), exprs)
        else:
            found.add(name)
    return found


def _statistic(stat: str, values: list[float]) -> float:
    if stat == "SampleCount":
        return float(len(values))
    if stat == "Sum":
        return sum(values)
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Average":
        return sum(values) / len(values)
    raise ValueError(f"statistic {stat} is not modelled")


COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, th: v >= th,
    "GreaterThanThreshold": lambda v, th: v > th,
    "LessThanThreshold": lambda v, th: v < th,
    "LessThanOrEqualToThreshold": lambda v, th: v <= th,
}


def _alarm_state(alarm: Alarm, points: list[float | None], current: str) -> str:
    """CloudWatch's rule for missing data (AlarmThatSendsEmail, "How alarm
    state is evaluated when data is missing")."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    compare = COMPARE[alarm.comparison]
    real = [p for p in points if p is not None]
    breaching = [compare(p, alarm.threshold) for p in real]
    if len(real) >= n:
        return "ALARM" if sum(breaching[:n]) >= m else "OK"
    fill = n - len(real)
    if alarm.treat_missing == "breaching":
        return "ALARM" if sum(breaching) + fill >= m else "OK"
    if alarm.treat_missing == "notBreaching":
        return "ALARM" if sum(breaching) >= m else "OK"
    if not real:
        return current if alarm.treat_missing == "ignore" else "INSUFFICIENT_DATA"
    if sum(breaching) >= min(m, len(real)):
        return "ALARM"
    return "OK"


def _step_for(steps: tuple[Step, ...], offset: float) -> Step | None:
    """Application Auto Scaling's step for a value `offset` from the
    threshold: above it the lower bound is inclusive, below it the upper."""
    for step in steps:
        lower = -math.inf if step.lower is None else step.lower
        upper = math.inf if step.upper is None else step.upper
        inside = lower <= offset < upper if offset >= 0 else lower < offset <= upper
        if inside:
            return step
    return None


def _percent(current: int, percent: int) -> int:
    change = current * percent / 100
    if 0 < change < 1:
        return 1
    if -1 < change < 0:
        return -1
    return math.trunc(change)
