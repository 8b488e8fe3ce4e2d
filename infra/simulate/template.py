"""What the simulator reads from a synthesized CloudFormation template: the
fleets (task definition, service, scalable target, queue), the alarms and
the step scaling policies they drive, exactly as they would be deployed.

Resources are found by what they are, never by logical ID: a fleet is the
task definition whose container runs `map` or `reduce`, its service, the
scalable target on that service, and the queue its task role may delete
from. Metric dimensions are resolved to the fleet they describe.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker import names

# Application Auto Scaling's cooldown when a step policy names none.
DEFAULT_COOLDOWN_S = 300
# CloudFormation starts a service with no DesiredCount at one task.
DEFAULT_INITIAL_DESIRED = 1


class TemplateError(ValueError):
    """The template lacks something the simulator needs."""


@dataclass(frozen=True)
class MetricRef:
    """A metric the simulator can produce: `source` is "sqs", "ecs" or
    "activity"; `fleet` the fleet it describes ("" when unknown: never
    published)."""

    source: str
    name: str
    fleet: str
    stat: str
    period_s: int


@dataclass(frozen=True)
class Query:
    """One entry of an alarm's metrics: a metric or an expression."""

    id: str
    metric: MetricRef | None = None
    expression: str | None = None
    returned: bool = True


@dataclass(frozen=True)
class Alarm:
    id: str
    queries: tuple[Query, ...]
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing: str
    policies: tuple[str, ...]

    @property
    def period_s(self) -> int:
        periods = {q.metric.period_s for q in self.queries if q.metric is not None}
        if len(periods) != 1:
            raise TemplateError(f"alarm {self.id}: its metrics must share one period")
        return periods.pop()

    @property
    def fleets(self) -> set[str]:
        return {q.metric.fleet for q in self.queries if q.metric is not None and q.metric.fleet}


@dataclass(frozen=True)
class Step:
    lower: float | None
    upper: float | None
    adjustment: int


@dataclass(frozen=True)
class Policy:
    id: str
    fleet: str
    adjustment_type: str
    steps: tuple[Step, ...]
    cooldown_s: int
    aggregation: str


@dataclass
class Fleet:
    name: str  # the worker command: map or reduce
    service: str
    task_definition: str
    queue: str
    vcpu: float
    memory_gb: float
    min_tasks: int
    max_tasks: int
    initial_desired: int
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def activity_fleet(self) -> str | None:
        value = self.environment.get(names.ENV_ACTIVITY_FLEET)
        return value if isinstance(value, str) else None

    def env_int(self, name: str) -> int | None:
        value = self.environment.get(name)
        return int(value) if isinstance(value, str | int) and str(value).isdigit() else None


@dataclass
class Stack:
    fleets: dict[str, Fleet]
    alarms: list[Alarm]
    policies: dict[str, Policy]
    outputs: dict[str, Any]

    def wake_max(self, fleet: str) -> int:
        """The bound `submit` puts on a wake-up: the stack's output when it
        exports one, else the scalable target's maximum."""
        key = names.OUTPUT_MAP_MAX_TASKS if fleet == "map" else names.OUTPUT_REDUCE_MAX_TASKS
        value = self.outputs.get(key)
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return self.fleets[fleet].max_tasks


def load(path: Path) -> Stack:
    return parse(json.loads(Path(path).read_text()))


def find_template(cdk_out: Path = Path("cdk.out")) -> Path:
    found = sorted(Path(cdk_out).glob("*.template.json"))
    if len(found) != 1:
        raise TemplateError(
            f"expected one template in {cdk_out}, found {len(found)}: run `npx cdk synth` "
            "first, or name one with --template"
        )
    return found[0]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        elif "Fn::GetAtt" in value:
            yield value["Fn::GetAtt"][0]
        else:
            for item in value.values():
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parse(raw: dict[str, Any]) -> Stack:
    resources: dict[str, dict[str, Any]] = raw.get("Resources", {})

    def of_type(type_: str) -> dict[str, dict[str, Any]]:
        return {k: v.get("Properties", {}) for k, v in resources.items() if v["Type"] == type_}

    fleets: dict[str, Fleet] = {}
    services = of_type("AWS::ECS::Service")
    targets = of_type("AWS::ApplicationAutoScaling::ScalableTarget")
    policies_raw = of_type("AWS::IAM::Policy")
    for td_id, td in of_type("AWS::ECS::TaskDefinition").items():
        (container, *_) = td["ContainerDefinitions"]
        command = container.get("Command") or []
        if command not in (["map"], ["reduce"]):
            continue
        name = command[0]
        (service_id,) = [k for k, v in services.items() if td_id in _refs(v["TaskDefinition"])]
        target_ids = [k for k, v in targets.items() if service_id in _refs(v["ResourceId"])]
        if len(target_ids) != 1:
            raise TemplateError(f"the {name} service needs one scalable target")
        target = targets[target_ids[0]]
        role = next(_refs(td.get("TaskRoleArn")), None)
        queues = {
            arn_owner
            for policy in policies_raw.values()
            if role in _refs(policy.get("Roles", []))
            for statement in policy["PolicyDocument"]["Statement"]
            if "sqs:DeleteMessage" in _as_list(statement["Action"])
            for arn_owner in _refs(statement["Resource"])
        }
        if len(queues) != 1:
            raise TemplateError(f"the {name} fleet's task role must consume one queue")
        fleets[name] = Fleet(
            name=name,
            service=service_id,
            task_definition=td_id,
            queue=queues.pop(),
            vcpu=int(td.get("Cpu", 1024)) / 1024,
            memory_gb=int(td.get("Memory", 2048)) / 1024,
            min_tasks=int(target["MinCapacity"]),
            max_tasks=int(target["MaxCapacity"]),
            initial_desired=int(services[service_id].get("DesiredCount", DEFAULT_INITIAL_DESIRED)),
            environment={e["Name"]: e["Value"] for e in container.get("Environment", [])},
        )
    if "map" not in fleets or "reduce" not in fleets:
        raise TemplateError("the template needs a map and a reduce fleet")
    fleets = {name: fleets[name] for name in ("map", "reduce")}
    target_fleet = {
        target_id: name
        for name, f in fleets.items()
        for target_id, t in targets.items()
        if f.service in _refs(t["ResourceId"])
    }

    policies: dict[str, Policy] = {}
    for policy_id, p in of_type("AWS::ApplicationAutoScaling::ScalingPolicy").items():
        target_id = next(_refs(p.get("ScalingTargetId")), None)
        if target_id not in target_fleet:
            continue
        if p.get("PolicyType") != "StepScaling":
            raise TemplateError(f"policy {policy_id}: only step scaling is modelled")
        config = p["StepScalingPolicyConfiguration"]
        policies[policy_id] = Policy(
            id=policy_id,
            fleet=target_fleet[target_id],
            adjustment_type=config["AdjustmentType"],
            steps=tuple(
                Step(
                    lower=s.get("MetricIntervalLowerBound"),
                    upper=s.get("MetricIntervalUpperBound"),
                    adjustment=int(s["ScalingAdjustment"]),
                )
                for s in config["StepAdjustments"]
            ),
            cooldown_s=int(config.get("Cooldown", DEFAULT_COOLDOWN_S)),
            aggregation=config.get("MetricAggregationType", "Average"),
        )

    by_queue = {f.queue: name for name, f in fleets.items()}
    by_service = {f.service: name for name, f in fleets.items()}
    by_activity = {f.activity_fleet: name for name, f in fleets.items() if f.activity_fleet}

    def metric(spec: dict[str, Any], stat: str, period: int) -> MetricRef:
        namespace, name = spec["Namespace"], spec["MetricName"]
        dims = {d["Name"]: d["Value"] for d in spec.get("Dimensions", [])}
        fleet, source = "", ""
        if namespace == "AWS/SQS":
            source = "sqs"
            fleet = by_queue.get(next(_refs(dims.get("QueueName")), ""), "")
        elif namespace == "AWS/ECS":
            source = "ecs"
            fleet = by_service.get(next(_refs(dims.get("ServiceName")), ""), "")
        elif namespace == names.ACTIVITY_NAMESPACE:
            source = "activity"
            fleet = by_activity.get(dims.get(names.ACTIVITY_DIMENSION, ""), "")
        return MetricRef(source=source, name=name, fleet=fleet, stat=stat, period_s=period)

    alarms: list[Alarm] = []
    for alarm_id, a in of_type("AWS::CloudWatch::Alarm").items():
        actions = tuple(p for p in _refs(a.get("AlarmActions", [])) if p in policies)
        if not actions:
            continue
        if "Metrics" in a:
            queries = tuple(
                Query(
                    id=q["Id"],
                    metric=metric(
                        q["MetricStat"]["Metric"],
                        q["MetricStat"]["Stat"],
                        q["MetricStat"]["Period"],
                    )
                    if "MetricStat" in q
                    else None,
                    expression=q.get("Expression"),
                    returned=q.get("ReturnData", True),
                )
                for q in a["Metrics"]
            )
        else:
            queries = (
                Query(
                    id="m",
                    metric=metric(
                        {
                            "Namespace": a["Namespace"],
                            "MetricName": a["MetricName"],
                            "Dimensions": a.get("Dimensions", []),
                        },
                        a["Statistic"],
                        int(a["Period"]),
                    ),
                ),
            )
        periods = int(a["EvaluationPeriods"])
        alarms.append(
            Alarm(
                id=alarm_id,
                queries=queries,
                threshold=float(a["Threshold"]),
                comparison=a["ComparisonOperator"],
                evaluation_periods=periods,
                datapoints_to_alarm=int(a.get("DatapointsToAlarm", periods)),
                treat_missing=a.get("TreatMissingData", "missing"),
                policies=actions,
            )
        )
    return Stack(fleets=fleets, alarms=alarms, policies=policies, outputs=_outputs(raw))


def _outputs(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v.get("Value") for k, v in raw.get("Outputs", {}).items()}
