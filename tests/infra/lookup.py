"""Finding resources in a synthesized template by what they are (the map
fleet's service, the queue a scaling alarm watches), never by logical ID."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Template = dict[str, Any]


def resources(raw: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == type_}


def props(raw: Template, logical_id: str) -> dict[str, Any]:
    return raw["Resources"][logical_id].get("Properties", {})


def refs(value: Any) -> Iterator[str]:
    """Logical IDs a property value points at through Ref or Fn::GetAtt."""
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        elif "Fn::GetAtt" in value:
            yield value["Fn::GetAtt"][0]
        else:
            for item in value.values():
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


@dataclass(frozen=True)
class Fleet:
    """The logical IDs that make up one fleet."""

    command: str
    task_definition: str
    service: str
    scalable_target: str
    queue: str
    dead_letter_queue: str
    task_role: str

    def container(self, raw: Template) -> dict[str, Any]:
        (container,) = props(raw, self.task_definition)["ContainerDefinitions"]
        return container

    def environment(self, raw: Template) -> dict[str, Any]:
        return {e["Name"]: e["Value"] for e in self.container(raw).get("Environment", [])}

    def scaling_policies(self, raw: Template) -> dict[str, dict[str, Any]]:
        return {
            k: v
            for k, v in resources(raw, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
            if self.scalable_target in refs(v["Properties"])
        }

    def alarms_acting_on(self, raw: Template, policy: str) -> dict[str, dict[str, Any]]:
        return {
            k: v
            for k, v in resources(raw, "AWS::CloudWatch::Alarm").items()
            if policy in refs(v["Properties"].get("AlarmActions", []))
        }

    def policy_statements(self, raw: Template) -> list[dict[str, Any]]:
        return [
            statement
            for policy in resources(raw, "AWS::IAM::Policy").values()
            if self.task_role in refs(policy["Properties"]["Roles"])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


def fleet(raw: Template, command: str) -> Fleet:
    """The fleet whose container runs `python -m worker <command>`."""
    (task_definition,) = [
        k
        for k, v in resources(raw, "AWS::ECS::TaskDefinition").items()
        if v["Properties"]["ContainerDefinitions"][0].get("Command") == [command]
    ]
    (service,) = [
        k
        for k, v in resources(raw, "AWS::ECS::Service").items()
        if task_definition in refs(v["Properties"]["TaskDefinition"])
    ]
    (scalable_target,) = [
        k
        for k, v in resources(raw, "AWS::ApplicationAutoScaling::ScalableTarget").items()
        if service in refs(v["Properties"]["ResourceId"])
    ]
    # The queue the fleet consumes is the one its task role may delete from.
    task_role = next(refs(props(raw, task_definition)["TaskRoleArn"]))
    (queue,) = {
        arn_owner
        for policy in resources(raw, "AWS::IAM::Policy").values()
        if task_role in refs(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sqs:DeleteMessage" in as_list(statement["Action"])
        for arn_owner in refs(statement["Resource"])
    }
    dead_letter_queue = next(refs(props(raw, queue)["RedrivePolicy"]["deadLetterTargetArn"]))
    return Fleet(
        command=command,
        task_definition=task_definition,
        service=service,
        scalable_target=scalable_target,
        queue=queue,
        dead_letter_queue=dead_letter_queue,
        task_role=task_role,
    )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
