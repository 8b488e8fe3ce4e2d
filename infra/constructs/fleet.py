"""A scale-to-zero Fargate fleet that serves one work queue.

Built on `aws_ecs_patterns.QueueProcessingFargateService`, minus its traps:

- its CPU target tracking scales I/O-bound workers in mid-message and out
  into duplicate work (aws-cdk issue 20706): disabled;
- its default steps start at 100 visible messages, so a fleet at zero with
  fewer never wakes: the first step here adds a task from 1 message;
- its scale-in step looks at visible messages only and so removes tasks whose
  messages are in flight: there is none here (the steps scale out only), and
  a separate alarm sets the fleet to zero once the backlog, in-flight
  messages included, has been empty for the whole idle window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from worker.settings import ScalingStep

# SQS and ECS publish these metrics once a minute.
METRIC_PERIOD = Duration.minutes(1)
# Outputs the pattern adds about its queue; the stack exports its own set.
PATTERN_OUTPUTS = ("SQSQueue", "SQSQueueArn")
CONTAINER_NAME = "Worker"


def scale_out_intervals(steps: Sequence[ScalingStep]) -> list[appscaling.ScalingInterval]:
    """The pattern's `scaling_steps` for scale-out-only steps.

    Step scaling needs at least two intervals, and a negative step would be
    the visible-messages-only scale-in this fleet must not have. A zero
    change below the first step satisfies the first rule whatever the number
    of steps (CDK drops zero-change intervals), so no scale-in alarm exists.
    """
    if not steps:
        raise ValueError("a fleet needs at least one scale-out step")
    if any(step.change <= 0 for step in steps):
        raise ValueError(f"scale-out steps must add tasks, got {list(steps)}")
    first = min(steps, key=lambda step: step.lower or 0)
    if not first.lower or first.lower < 1:
        raise ValueError(f"the first scale-out step must start at 1 message or more, got {first}")
    return [
        appscaling.ScalingInterval(upper=first.lower, change=0),
        *(appscaling.ScalingInterval(**step.as_cdk()) for step in steps),
    ]


def capacity_providers(*, use_spot: bool) -> list[ecs.CapacityProviderStrategy]:
    """On-demand Fargate, or Fargate Spot for every task after the first.

    ECS does not move a task to on-demand when Spot has no capacity; keeping
    the first task on on-demand Fargate means a job still makes progress
    then, on that one task, while Spot supplies the rest at its discount.
    """
    if not use_spot:
        return [ecs.CapacityProviderStrategy(capacity_provider="FARGATE", weight=1)]
    return [
        ecs.CapacityProviderStrategy(capacity_provider="FARGATE", base=1, weight=0),
        ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1),
    ]


class QueueFleet(Construct):
    """Tasks running `python -m worker <command>` against `queue`, from 0 to
    `max_tasks`. Exposes `service`, `task_definition` and `task_role`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: ecs.ICluster,
        security_group: ec2.ISecurityGroup,
        image: ecs.ContainerImage,
        command: str,
        queue: sqs.IQueue,
        environment: Mapping[str, str],
        cpu: int,
        memory_mib: int,
        max_tasks: int,
        scale_out_steps: Sequence[ScalingStep],
        scale_out_cooldown_s: int,
        scale_in_idle_s: int,
        stop_timeout_s: int,
        use_spot: bool,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        # Our own task definition, because the pattern's has no stop timeout;
        # the pattern then passes no QUEUE_NAME, so `environment` carries the
        # queue URLs.
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.task_definition.add_container(
            CONTAINER_NAME,
            image=image,
            command=[command],
            environment=dict(environment),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=command, log_group=self.log_group),
            stop_timeout=Duration.seconds(stop_timeout_s),
        )
        self.task_role = self.task_definition.task_role

        pattern = ecs_patterns.QueueProcessingFargateService(
            self,
            "Fleet",
            cluster=cluster,
            queue=queue,
            task_definition=self.task_definition,
            min_scaling_capacity=0,
            max_scaling_capacity=max_tasks,
            scaling_steps=scale_out_intervals(scale_out_steps),
            cooldown=Duration.seconds(scale_out_cooldown_s),
            disable_cpu_based_scaling=True,
            capacity_provider_strategies=capacity_providers(use_spot=use_spot),
            assign_public_ip=True,
            task_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        for output in PATTERN_OUTPUTS:
            pattern.node.try_remove_child(output)
        self.service = pattern.service
        self._scale_in_when_idle(queue=queue, idle_s=scale_in_idle_s)

    def _scale_in_when_idle(self, *, queue: sqs.IQueue, idle_s: int) -> None:
        """Set the fleet to zero after `idle_s` of tasks running with nothing
        to do: no visible and no in-flight message.

        Missing data never counts as idle: SQS metrics arrive up to 15
        minutes late when a queue turns active again, and a gap must not
        read as an empty queue. The alarm is only true while tasks run, so
        it is not still in ALARM (whose scaling action CloudWatch repeats
        every minute) when `submit` raises the desired count of an idle
        fleet.
        """
        idle = cloudwatch.MathExpression(
            expression="IF(tasks > 0 AND (visible + inflight) == 0, 1, 0)",
            using_metrics={
                "visible": queue.metric_approximate_number_of_messages_visible(
                    period=METRIC_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                "inflight": queue.metric_approximate_number_of_messages_not_visible(
                    period=METRIC_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                # ECS reports a service's CPU only while it has running tasks.
                "tasks": self.service.metric_cpu_utilization(
                    period=METRIC_PERIOD, statistic=cloudwatch.Stats.SAMPLE_COUNT
                ),
            },
            period=METRIC_PERIOD,
            label="Tasks running with an empty backlog",
        )
        periods = math.ceil(idle_s / METRIC_PERIOD.to_seconds())
        alarm = cloudwatch.Alarm(
            self,
            "IdleAlarm",
            alarm_description=(
                f"Tasks have run for {idle_s} s with no visible or in-flight message: "
                "scale the fleet to zero"
            ),
            metric=idle,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # The pattern made the scalable target (min 0, max `max_tasks`) when it
        # enabled autoscaling; a service can have only one.
        target = self.service.node.find_child("TaskCount").node.find_child("Target")
        scale_in = appscaling.StepScalingAction(
            self,
            "ScaleInWhenIdle",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
        )
        scale_in.add_adjustment(adjustment=0, lower_bound=0)
        alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(scale_in))
        self.idle_alarm = alarm
