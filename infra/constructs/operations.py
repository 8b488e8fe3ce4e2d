"""What an operator watches: an alarm per dead-letter queue, an SNS topic
that carries it (to an e-mail address if one is configured) and a dashboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(1)
DLQ_PERIOD = Duration.minutes(5)
WIDGET_WIDTH = 12
WIDGET_HEIGHT = 6


@dataclass(frozen=True)
class Watched:
    """One fleet as the dashboard and the alarms see it."""

    name: str
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue
    service: ecs.FargateService


class Operations(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        fleets: Sequence[Watched],
        cluster: ecs.ICluster,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "AlarmTopic", display_name="Drover alarms", enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.dead_letter_alarms = []
        for fleet in fleets:
            alarm = cloudwatch.Alarm(
                self,
                f"{fleet.name}DeadLetterAlarm",
                alarm_description=(
                    f"The {fleet.name.lower()} dead-letter queue holds messages that failed "
                    "every attempt: see `python -m submit status` for the job and the error"
                ),
                metric=fleet.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=DLQ_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
            alarm.add_ok_action(cloudwatch_actions.SnsAction(self.topic))
            self.dead_letter_alarms.append(alarm)

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            # Named after the stack, so an operator finds "Drover" in the console.
            dashboard_name=Stack.of(self).stack_name,
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            _graph(
                "Queue depth (visible + in flight)",
                [
                    metric
                    for fleet in fleets
                    for metric in (
                        fleet.queue.metric_approximate_number_of_messages_visible(
                            period=PERIOD,
                            statistic=cloudwatch.Stats.MAXIMUM,
                            label=f"{fleet.name} visible",
                        ),
                        fleet.queue.metric_approximate_number_of_messages_not_visible(
                            period=PERIOD,
                            statistic=cloudwatch.Stats.MAXIMUM,
                            label=f"{fleet.name} in flight",
                        ),
                    )
                ],
            ),
            _graph(
                "Running tasks",
                [
                    cloudwatch.Metric(
                        namespace="ECS/ContainerInsights",
                        metric_name="RunningTaskCount",
                        dimensions_map={
                            "ClusterName": cluster.cluster_name,
                            "ServiceName": fleet.service.service_name,
                        },
                        period=PERIOD,
                        statistic=cloudwatch.Stats.MAXIMUM,
                        label=f"{fleet.name} tasks",
                    )
                    for fleet in fleets
                ],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Dead-letter queue depth",
                [
                    fleet.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD,
                        statistic=cloudwatch.Stats.MAXIMUM,
                        label=f"{fleet.name} DLQ",
                    )
                    for fleet in fleets
                ],
            ),
            _graph(
                "Throughput (messages completed per minute)",
                [
                    fleet.queue.metric_number_of_messages_deleted(
                        period=PERIOD,
                        statistic=cloudwatch.Stats.SUM,
                        label=f"{fleet.name} done",
                    )
                    for fleet in fleets
                ],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=self.dead_letter_alarms,
                width=WIDGET_WIDTH * 2,
                height=3,
            )
        )


def _graph(title: str, metrics: Sequence[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title, left=list(metrics), width=WIDGET_WIDTH, height=WIDGET_HEIGHT
    )
