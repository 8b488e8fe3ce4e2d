"""A scale-to-zero Fargate fleet that serves one work queue.

A plain `FargateService` with two scaling rules of its own, rather than
`aws_ecs_patterns.QueueProcessingFargateService`, whose scaling is what this
fleet must not have: CPU target tracking that scales I/O-bound workers in
mid-message and out into duplicate work (aws-cdk issue 20706), steps that
start at 100 visible messages, `ChangeInCapacity` steps that CloudWatch
repeats every minute while the alarm stays in ALARM (a 1-chunk job grew to
five or six tasks) and that count from the running tasks (lowering a desired
count that `submit` raised for tasks still PENDING), and a scale-in step on
visible messages alone that removes tasks whose messages are in flight.

The rules, read against CloudWatch's and Application Auto Scaling's real
semantics (FIELD-NOTES, "Scaling the fleets"); `python -m infra.simulate`
runs them minute by minute:

- Size. When the backlog (visible plus in-flight messages, missing values
  filled with 0) exceeds the running tasks (ECS's task count, absent and so 0
  with none running), the fleet is set to the backlog's level: an
  `ExactCapacity` step per task count (`worker.settings.scaling_levels`), so
  a repeated action sets the same count again and no count exceeds the
  backlog. A fleet that has enough tasks has no datapoint above 0, so this
  rule never shrinks a draining fleet below its work. Two of three minutes
  must agree: one spurious in-flight 1 on an empty queue does not start a
  task.
- Rest. The workers report every 20 s whether they held a message (an
  embedded-metric log line, see `worker.activity`). A minute is idle when
  workers reported, none held a message and SQS showed nothing visible or in
  flight; the fleet is set to zero after the idle window of such minutes,
  one of which may be a spurious in-flight 1. Missing data is never idle, and
  a gap in SQS's metrics (up to 15 minutes after a queue wakes from six idle
  hours) does not delay rest, because the workers' reports have no such gap.
  The step applies only when the newest datapoint is idle, and the policy's
  cooldown outlasts the minutes its alarm can stay in ALARM after a
  scale-in, so it never undoes a wake-up.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import permissions
from worker import names
from worker import settings as cfg

METRIC_PERIOD = Duration.seconds(cfg.METRIC_PERIOD_S)
CONTAINER_NAME = "Worker"
SCRATCH_VOLUME = "tmp"

# Backlog and task count with missing values as 0: NotVisible is reported
# only while messages are in flight, and ECS publishes nothing for a service
# with no running task.
BACKLOG = "FILL(visible, 0) + FILL(inflight, 0)"
SHORTFALL_EXPRESSION = f"IF({BACKLOG} > FILL(tasks, 0), {BACKLOG}, 0)"
# `busy` is the highest of the workers' reports in the minute: 0 only when
# workers reported and none held a message; no report at all reads as busy.
IDLE_EXPRESSION = f"IF(FILL(busy, 1) == 0 AND {BACKLOG} == 0, 1, 0)"


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


def sizing_intervals(max_tasks: int) -> list[tuple[int, int | None, int]]:
    """(lower, upper, task count) of the sizing policy's steps, as offsets
    from the alarm's threshold of one message: a backlog from `lower + 1` up
    to `upper + 1` (exclusive) sets that many tasks."""
    levels = cfg.scaling_levels(max_tasks)
    return [
        (level - 1, (levels[i + 1] - 1) if i + 1 < len(levels) else None, level)
        for i, level in enumerate(levels)
    ]


class QueueFleet(Construct):
    """Tasks running `python -m worker <command>` against `queue`, from 0 to
    `max_tasks`. Exposes `service`, `task_definition`, `task_role`,
    `scalable_target`, `sizing_alarm` and `idle_alarm`. `service_name`
    (default: one CloudFormation generates) fixes the service's name, for a
    name that must be known before the service exists."""

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
        activity_fleet: str,
        cpu: int,
        memory_mib: int,
        max_tasks: int,
        scale_in_idle_s: int,
        stop_timeout_s: int,
        use_spot: bool,
        log_retention: logs.RetentionDays,
        service_name: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
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
        # The root filesystem is read-only; /tmp is the task's scratch space
        # (tempfile.gettempdir()), on the task's ephemeral storage.
        self.task_definition.add_volume(name=SCRATCH_VOLUME)
        container = self.task_definition.add_container(
            CONTAINER_NAME,
            image=image,
            command=[command],
            environment={**environment, names.ENV_ACTIVITY_FLEET: activity_fleet},
            logging=ecs.LogDrivers.aws_logs(stream_prefix=command, log_group=self.log_group),
            stop_timeout=Duration.seconds(stop_timeout_s),
            readonly_root_filesystem=True,
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume=SCRATCH_VOLUME, read_only=False)
        )
        self.task_role = self.task_definition.task_role
        self.task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.CONSUME, resources=[queue.queue_arn])
        )

        # Under the construct path the aws-ecs-patterns service had, so that
        # a stack deployed with it updates its services in place.
        legacy = Construct(self, "Fleet")
        self.service = ecs.FargateService(
            legacy,
            "QueueProcessingFargateService",
            cluster=cluster,
            task_definition=self.task_definition,
            service_name=service_name,
            capacity_provider_strategies=capacity_providers(use_spot=use_spot),
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        self.scalable_target = self.service.auto_scale_task_count(
            min_capacity=0, max_capacity=max_tasks
        )
        target = self.service.node.find_child("TaskCount").node.find_child("Target")
        self.sizing_alarm = self._size_to_backlog(queue=queue, target=target, max_tasks=max_tasks)
        self.idle_alarm = self._rest_when_idle(
            queue=queue, target=target, activity_fleet=activity_fleet, idle_s=scale_in_idle_s
        )

    def _queue_metrics(self, queue: sqs.IQueue) -> dict[str, cloudwatch.IMetric]:
        return {
            "visible": queue.metric_approximate_number_of_messages_visible(
                period=METRIC_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
            ),
            "inflight": queue.metric_approximate_number_of_messages_not_visible(
                period=METRIC_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
            ),
        }

    def _size_to_backlog(
        self, *, queue: sqs.IQueue, target: appscaling.IScalableTarget, max_tasks: int
    ) -> cloudwatch.Alarm:
        shortfall = cloudwatch.MathExpression(
            expression=SHORTFALL_EXPRESSION,
            using_metrics={
                **self._queue_metrics(queue),
                # ECS counts RUNNING tasks only, one sample each a minute.
                "tasks": self.service.metric_cpu_utilization(
                    period=METRIC_PERIOD, statistic=cloudwatch.Stats.SAMPLE_COUNT
                ),
            },
            period=METRIC_PERIOD,
            label="Backlog while it exceeds the running tasks",
        )
        alarm = cloudwatch.Alarm(
            self,
            "SizingAlarm",
            alarm_description=(
                "Fewer tasks run than messages wait or are in flight: set the fleet to "
                "the backlog's level, up to its maximum"
            ),
            metric=shortfall,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=cfg.SIZING_EVALUATION_PERIODS,
            datapoints_to_alarm=cfg.SIZING_DATAPOINTS_TO_ALARM,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        size = appscaling.StepScalingAction(
            self,
            "SizeToBacklog",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            cooldown=Duration.seconds(cfg.SCALE_OUT_COOLDOWN_S),
            # Of the recent datapoints the highest, so that a sample taken
            # while submit was still enqueueing never sets fewer tasks.
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        for lower, upper, tasks in sizing_intervals(max_tasks):
            size.add_adjustment(adjustment=tasks, lower_bound=lower, upper_bound=upper)
        alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(size))
        return alarm

    def _rest_when_idle(
        self,
        *,
        queue: sqs.IQueue,
        target: appscaling.IScalableTarget,
        activity_fleet: str,
        idle_s: int,
    ) -> cloudwatch.Alarm:
        idle = cloudwatch.MathExpression(
            expression=IDLE_EXPRESSION,
            using_metrics={
                **self._queue_metrics(queue),
                "busy": cloudwatch.Metric(
                    namespace=names.ACTIVITY_NAMESPACE,
                    metric_name=names.ACTIVITY_METRIC,
                    dimensions_map={names.ACTIVITY_DIMENSION: activity_fleet},
                    period=METRIC_PERIOD,
                    statistic=cloudwatch.Stats.MAXIMUM,
                ),
            },
            period=METRIC_PERIOD,
            label="Workers reported and none held a message",
        )
        periods = cfg.idle_periods(idle_s)
        alarm = cloudwatch.Alarm(
            self,
            "IdleAlarm",
            alarm_description=(
                f"Workers have reported no message in hand for {idle_s} s and the queue "
                "showed none: set the fleet to zero"
            ),
            metric=idle,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=cfg.idle_datapoints_to_alarm(idle_s),
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        rest = appscaling.StepScalingAction(
            self,
            "RestWhenIdle",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            cooldown=Duration.seconds(cfg.IDLE_COOLDOWN_S),
            # Of the recent datapoints the lowest: one busy minute among them
            # and no step applies.
            metric_aggregation_type=appscaling.MetricAggregationType.MINIMUM,
        )
        rest.add_adjustment(adjustment=0, lower_bound=0)
        alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(rest))
        return alarm
