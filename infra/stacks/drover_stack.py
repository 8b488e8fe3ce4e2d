"""The Drover stack: composes storage, queues, the two fleets and their
operations, wires each fleet's permissions and exports what `submit` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import ArnFormat, CfnOutput, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import permissions
from infra.config import Deployment
from infra.constructs.fleet import QueueFleet
from infra.constructs.network import Network
from infra.constructs.operations import Operations, Watched
from infra.constructs.storage import Storage
from infra.constructs.work_queue import WorkQueue
from infra.nag import acknowledge, wildcard_resource
from worker import names

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "worker/Dockerfile"

# CloudWatch Logs' retention periods, by the day counts that
# `worker.settings.LOG_RETENTION_DAYS` allows.
RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class DroverStack(Stack):
    def __init__(self, scope: Construct, id: str, *, deployment: Deployment) -> None:
        super().__init__(
            scope,
            id,
            description="Drover: MapReduce jobs on scale-to-zero Fargate fleets",
        )
        self.deployment = deployment
        settings = deployment.settings
        retention = RETENTION[settings.log_retention_days]

        network = Network(self, "Network", flow_log_retention=retention)
        storage = Storage(
            self,
            "Storage",
            map_output_expiry_days=settings.map_output_expiry_days,
            input_expiry_days=settings.input_expiry_days,
            access_log_expiry_days=settings.log_retention_days,
        )
        queue_options = {
            "visibility_timeout_s": settings.visibility_timeout_s,
            "max_receive_count": settings.max_receive_count,
            "receive_wait_s": settings.receive_wait_s,
            "retention_days": settings.queue_retention_days,
            "dead_letter_retention_days": settings.dlq_retention_days,
        }
        map_work = WorkQueue(self, "MapWork", **queue_options)
        reduce_work = WorkQueue(self, "ReduceWork", **queue_options)

        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        # Made here rather than by `enable_fargate_capacity_providers`, whose
        # association CDK adds late and does not order the services after:
        # a service whose strategy names an unassociated provider fails.
        capacity_providers = ecs.CfnClusterCapacityProviderAssociations(
            self,
            "CapacityProviders",
            cluster=cluster.cluster_name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategy=[],
        )
        # Staged into the cloud assembly at synth; built and pushed by
        # `cdk deploy`, so synthesis needs no Docker.
        jobs = deployment.job_modules
        image = ecs.ContainerImage.from_asset(
            str(PROJECT_ROOT),
            file=DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
            # Your job modules (-c jobModules=DIR): the directory is the
            # Dockerfile's "jobs" build context, copied in under its name.
            **(
                {
                    "build_contexts": {"jobs": str(jobs.directory)},
                    "build_args": {"JOB_PACKAGE": jobs.package},
                }
                if jobs
                else {}
            ),
        )
        environment = {
            names.ENV_TABLE: storage.table.table_name,
            names.ENV_MAP_QUEUE_URL: map_work.queue.queue_url,
            names.ENV_REDUCE_QUEUE_URL: reduce_work.queue.queue_url,
            names.ENV_MAX_TASK_SECONDS: str(settings.max_task_s),
            # What both queues are made with (queue_options), so that a
            # worker need not read them from its queue.
            names.ENV_VISIBILITY_TIMEOUT_S: str(settings.visibility_timeout_s),
            names.ENV_MAX_RECEIVE_COUNT: str(settings.max_receive_count),
            **({names.ENV_JOB_MODULES: ",".join(jobs.modules)} if jobs else {}),
        }
        fleet_options = {
            "cluster": cluster,
            "security_group": network.task_security_group,
            "image": image,
            "cpu": settings.worker_cpu,
            "memory_mib": settings.worker_memory_mib,
            "scale_in_idle_s": settings.scale_in_idle_s,
            "stop_timeout_s": settings.stop_timeout_s,
            "use_spot": settings.use_spot,
            "log_retention": retention,
        }
        # Each fleet wakes the other rather than wait minutes for its queue
        # alarm (UpdateService, up to the other's maximum): the map worker
        # that completes a step's map wakes the reducers, the reducer that
        # starts a job's next step wakes the map workers. So each task
        # definition names the other fleet's service, and one of the two
        # names must be known before its service exists, or CloudFormation
        # sees a cycle (map task definition -> reduce service -> reduce task
        # definition -> map service -> map task definition): the map
        # service's name is fixed, `<stack>-map`, and the reducers' task
        # definition holds it as plain text.
        map_service_name = f"{self.stack_name}-map"
        reducers = QueueFleet(
            self,
            "ReduceFleet",
            command="reduce",
            queue=reduce_work.queue,
            environment={
                **environment,
                names.ENV_REDUCE_DLQ_URL: reduce_work.dead_letter_queue.queue_url,
                names.ENV_CLUSTER: cluster.cluster_name,
                names.ENV_MAP_SERVICE: map_service_name,
                names.ENV_MAP_MAX_TASKS: str(settings.max_workers),
            },
            activity_fleet=f"{self.stack_name}-reduce",
            max_tasks=settings.max_reducers,
            **fleet_options,
        )
        mappers = QueueFleet(
            self,
            "MapFleet",
            command="map",
            queue=map_work.queue,
            environment={
                **environment,
                names.ENV_MAP_DLQ_URL: map_work.dead_letter_queue.queue_url,
                names.ENV_CLUSTER: cluster.cluster_name,
                names.ENV_REDUCE_SERVICE: reducers.service.service_name,
                names.ENV_REDUCE_MAX_TASKS: str(settings.max_reducers),
            },
            activity_fleet=f"{self.stack_name}-map",
            max_tasks=settings.max_workers,
            service_name=map_service_name,
            **fleet_options,
        )

        for fleet, work in ((mappers, map_work), (reducers, reduce_work)):
            fleet.service.node.add_dependency(capacity_providers)
            self._grant_worker(fleet, work=work, storage=storage, cluster=cluster)
        # Map workers read the inputs and write map outputs; reducers read
        # map outputs and write results (and, for a job of several steps,
        # the next step's chunk plan). Neither writes anything else.
        self._grant_objects(
            mappers,
            storage=storage,
            read=permissions.INPUT_KEYS,
            write=[permissions.MAP_OUTPUT_KEYS],
        )
        self._grant_intermediate_results(mappers, storage=storage)
        self._grant_objects(
            reducers,
            storage=storage,
            read=permissions.MAP_OUTPUT_KEYS,
            write=[permissions.RESULT_KEYS, permissions.STEP_PLAN_KEYS],
        )
        mappers.task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.SEND, resources=[reduce_work.queue.queue_arn])
        )
        # The last reducer of a step of a job of several sends the next
        # step's chunks.
        reducers.task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.SEND, resources=[map_work.queue.queue_arn])
        )
        for statement in self._wake_statements(reducers, cluster=cluster):
            mappers.task_role.add_to_principal_policy(statement)
        # In a policy of its own: each service depends on its task role's
        # default policy, and this one names the map service and its task
        # definition, which already depends on the reduce service.
        iam.Policy(
            self,
            "ReducersWakeMapFleet",
            roles=[reducers.task_role],
            statements=self._wake_statements(mappers, cluster=cluster),
        )
        for bucket_name in deployment.input_buckets:
            self._grant_input_bucket(mappers, bucket_name)

        Operations(
            self,
            "Operations",
            fleets=[
                Watched("Map", map_work.queue, map_work.dead_letter_queue, mappers.service),
                Watched(
                    "Reduce", reduce_work.queue, reduce_work.dead_letter_queue, reducers.service
                ),
            ],
            cluster=cluster,
            alarm_email=settings.alarm_email,
        )

        outputs = {
            names.OUTPUT_BUCKET: storage.bucket.bucket_name,
            names.OUTPUT_TABLE: storage.table.table_name,
            names.OUTPUT_MAP_QUEUE_URL: map_work.queue.queue_url,
            names.OUTPUT_MAP_DLQ_URL: map_work.dead_letter_queue.queue_url,
            names.OUTPUT_REDUCE_QUEUE_URL: reduce_work.queue.queue_url,
            names.OUTPUT_REDUCE_DLQ_URL: reduce_work.dead_letter_queue.queue_url,
            names.OUTPUT_CLUSTER: cluster.cluster_name,
            names.OUTPUT_MAP_SERVICE: mappers.service.service_name,
            names.OUTPUT_REDUCE_SERVICE: reducers.service.service_name,
            names.OUTPUT_MAP_MAX_TASKS: str(settings.max_workers),
            names.OUTPUT_REDUCE_MAX_TASKS: str(settings.max_reducers),
            names.OUTPUT_INPUT_BUCKETS: json.dumps(list(deployment.input_buckets)),
            names.OUTPUT_TASK_CPU: str(settings.worker_cpu),
            names.OUTPUT_TASK_MEMORY_MIB: str(settings.worker_memory_mib),
        }
        for key in names.ALL_OUTPUTS:
            CfnOutput(self, key, value=outputs[key])

    def _grant_worker(
        self, fleet: QueueFleet, *, work: WorkQueue, storage: Storage, cluster: ecs.ICluster
    ) -> None:
        """What every worker needs beyond consuming its own queue (which the
        fleet grants): its DLQ for permanent failures, the jobs table, and
        scale-in protection for the task it runs in. Each action is one
        its code calls (infra/permissions.py)."""
        role = fleet.task_role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=permissions.DEAD_LETTER, resources=[work.dead_letter_queue.queue_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.TABLE, resources=[storage.table.table_arn])
        )
        # ListBucket, so that a missing key answers 404 rather than 403.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=permissions.LIST_BUCKET, resources=[storage.bucket.bucket_arn]
            )
        )
        tasks = self.format_arn(
            service="ecs",
            resource="task",
            resource_name=f"{cluster.cluster_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.TASK_PROTECTION, resources=[tasks])
        )
        acknowledge(
            role,
            wildcard_resource(self, tasks),
            "Scale-in protection is set by the running task on itself through the ECS "
            "agent; task ids exist only at run time, so the resource is every task of this "
            "stack's cluster, and the only action is setting protection.",
        )
        execution_role = fleet.task_definition.obtain_execution_role()
        acknowledge(
            execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, which ECS needs to pull the worker image, does "
            "not support resource-level permissions; the image pull itself is limited "
            "to the CDK asset repository.",
        )
        acknowledge(
            fleet.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds only resource names, queue URLs, the time limit and "
            "the job modules' names (table, queues, cluster, service), which are not "
            "secrets; the task role, not the environment, carries the credentials.",
        )

    def _grant_objects(
        self,
        fleet: QueueFleet,
        *,
        storage: Storage,
        read: str,
        write: list[str],
    ) -> None:
        """Read the job bucket's keys matching `read`, write (tagged) those
        matching `write`; the patterns follow the layout of worker.storage."""
        readable = storage.bucket.arn_for_objects(read)
        writable = [storage.bucket.arn_for_objects(pattern) for pattern in write]
        role = fleet.task_role
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.READ_OBJECTS, resources=[readable])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.WRITE_TAGGED_OBJECTS, resources=writable)
        )
        for arn, what in (
            (readable, f"reads {read}"),
            *((arn, f"writes {pattern}") for arn, pattern in zip(writable, write, strict=True)),
        ):
            acknowledge(
                role,
                wildcard_resource(self, arn),
                f"Object keys are chosen per job and chunk at run time; this fleet {what} "
                "of this one bucket, by the layout of worker.storage, and nothing else.",
            )

    def _grant_intermediate_results(self, mappers: QueueFleet, *, storage: Storage) -> None:
        """A later step's map reads the results of the step before it. Those
        are written with the intermediate tag (the last step's, the job's
        result, without it), so the map role may read results that carry
        it and no job's final result."""
        results = storage.bucket.arn_for_objects(permissions.RESULT_KEYS)
        mappers.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=permissions.READ_OBJECTS,
                resources=[results],
                conditions={
                    "StringEquals": {
                        f"s3:ExistingObjectTag/{names.MAP_OUTPUT_TAG_KEY}": (
                            names.MAP_OUTPUT_TAG_VALUE
                        )
                    }
                },
            )
        )
        acknowledge(
            mappers.task_role,
            wildcard_resource(self, results),
            "A later step's map reads the previous step's results, whose keys are chosen "
            "per job at run time; only those tagged as intermediate, of this one bucket.",
        )

    def _wake_statements(
        self, woken: QueueFleet, *, cluster: ecs.ICluster
    ) -> list[iam.PolicyStatement]:
        """Raising `woken`'s desired count (worker.ecs.wake_service). IAM has
        no condition on the desired count: the grant is one service, in this
        cluster, kept on its own task definition, with ECS Exec off. What
        remains is documented in the README (Deploy, Permissions)."""
        return [
            iam.PolicyStatement(
                actions=permissions.DESCRIBE_SERVICE, resources=[woken.service.service_arn]
            ),
            iam.PolicyStatement(
                actions=permissions.UPDATE_SERVICE,
                resources=[woken.service.service_arn],
                conditions={
                    "ArnEquals": {"ecs:cluster": cluster.cluster_arn},
                    "ArnEqualsIfExists": {
                        "ecs:task-definition": woken.task_definition.task_definition_arn
                    },
                    "BoolIfExists": {"ecs:enable-execute-command": "false"},
                },
            ),
        ]

    def _grant_input_bucket(self, fleet: QueueFleet, bucket_name: str) -> None:
        """Read access to a bucket the user keeps job inputs in."""
        bucket = self.format_arn(service="s3", region="", account="", resource=bucket_name)
        objects = f"{bucket}/*"
        fleet.task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.READ_OBJECTS, resources=[objects])
        )
        fleet.task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=permissions.LIST_BUCKET, resources=[bucket])
        )
        acknowledge(
            fleet.task_role,
            wildcard_resource(self, objects),
            f"Map workers read job inputs the user names at submit time from bucket "
            f"{bucket_name}, which the deployer listed in the inputBuckets context; the "
            "statement allows reading objects only.",
        )
