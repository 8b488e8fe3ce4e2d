"""A hand-written template with the scaling rules Drover shipped before
(ChangeInCapacity +1/+2/+5 steps on the Maximum of visible messages over
300 s with a 60 s cooldown; an ExactCapacity 0 policy on a 15-of-15 idle
alarm reading ECS's task count and SQS only, missing data not breaching),
and nothing else the simulator reads: the fixture that shows the simulator
can fail."""

from __future__ import annotations

from typing import Any


def _queue_dimensions(queue: str) -> list[dict[str, Any]]:
    return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]


def _fleet(name: str, max_tasks: int, idle_cooldown_s: int | None) -> dict[str, dict[str, Any]]:
    cap = name.capitalize()
    queue, role, td, service = f"{cap}Queue", f"{cap}Role", f"{cap}Task", f"{cap}Service"
    target = f"{cap}Target"
    scale_out, idle = f"{cap}ScaleOut", f"{cap}ScaleIn"
    visible = {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": _queue_dimensions(queue),
    }
    return {
        queue: {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 300}},
        role: {"Type": "AWS::IAM::Role", "Properties": {}},
        f"{cap}RolePolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": role}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                            "Effect": "Allow",
                            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                        }
                    ]
                },
            },
        },
        td: {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Cpu": "1024",
                "Memory": "2048",
                "TaskRoleArn": {"Fn::GetAtt": [role, "Arn"]},
                "ContainerDefinitions": [{"Name": "Worker", "Command": [name]}],
            },
        },
        service: {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": td}}},
        target: {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "MinCapacity": 0,
                "MaxCapacity": max_tasks,
                "ResourceId": {
                    "Fn::Join": [
                        "",
                        ["service/", {"Ref": "Cluster"}, "/", {"Fn::GetAtt": [service, "Name"]}],
                    ]
                },
            },
        },
        scale_out: {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {
                "PolicyType": "StepScaling",
                "ScalingTargetId": {"Ref": target},
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "Cooldown": 60,
                    "MetricAggregationType": "Maximum",
                    "StepAdjustments": [
                        {
                            "MetricIntervalLowerBound": 0,
                            "MetricIntervalUpperBound": 99,
                            "ScalingAdjustment": 1,
                        },
                        {
                            "MetricIntervalLowerBound": 99,
                            "MetricIntervalUpperBound": 499,
                            "ScalingAdjustment": 2,
                        },
                        {"MetricIntervalLowerBound": 499, "ScalingAdjustment": 5},
                    ],
                },
            },
        },
        f"{scale_out}Alarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                **visible,
                "AlarmActions": [{"Ref": scale_out}],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "EvaluationPeriods": 1,
                "Period": 300,
                "Statistic": "Maximum",
                "Threshold": 1,
            },
        },
        idle: {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {
                "PolicyType": "StepScaling",
                "ScalingTargetId": {"Ref": target},
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ExactCapacity",
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 0}],
                    # None: as shipped, no cooldown given (Application Auto
                    # Scaling then waits 300 s).
                    **({} if idle_cooldown_s is None else {"Cooldown": idle_cooldown_s}),
                },
            },
        },
        f"{idle}Alarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmActions": [{"Ref": idle}],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "DatapointsToAlarm": 15,
                "EvaluationPeriods": 15,
                "Threshold": 1,
                "TreatMissingData": "notBreaching",
                "Metrics": [
                    {
                        "Id": "expr",
                        "Expression": "IF(tasks > 0 AND (visible + inflight) == 0, 1, 0)",
                    },
                    {
                        "Id": "visible",
                        "ReturnData": False,
                        "MetricStat": {"Metric": visible, "Period": 60, "Stat": "Maximum"},
                    },
                    {
                        "Id": "inflight",
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                **visible,
                                "MetricName": "ApproximateNumberOfMessagesNotVisible",
                            },
                            "Period": 60,
                            "Stat": "Maximum",
                        },
                    },
                    {
                        "Id": "tasks",
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/ECS",
                                "MetricName": "CPUUtilization",
                                "Dimensions": [
                                    {"Name": "ClusterName", "Value": {"Ref": "Cluster"}},
                                    {
                                        "Name": "ServiceName",
                                        "Value": {"Fn::GetAtt": [service, "Name"]},
                                    },
                                ],
                            },
                            "Period": 60,
                            "Stat": "SampleCount",
                        },
                    },
                ],
            },
        },
    }


def naive_template(
    *, max_workers: int = 8, max_reducers: int = 2, idle_cooldown_s: int | None = None
) -> dict[str, Any]:
    return {
        "Resources": {
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {}},
            **_fleet("map", max_workers, idle_cooldown_s),
            **_fleet("reduce", max_reducers, idle_cooldown_s),
        }
    }
