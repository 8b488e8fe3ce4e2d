"""What each fleet's tasks run with: command, environment, stop timeout,
size, network and capacity providers."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synthesis
from tests.infra.lookup import fleet, props, refs, resources
from worker import names
from worker.settings import PROJECT_ROOT

COMMON_ENV = (
    names.ENV_ACTIVITY_FLEET,
    names.ENV_TABLE,
    names.ENV_MAP_QUEUE_URL,
    names.ENV_REDUCE_QUEUE_URL,
    names.ENV_MAX_TASK_SECONDS,
    names.ENV_VISIBILITY_TIMEOUT_S,
    names.ENV_MAX_RECEIVE_COUNT,
)


@pytest.mark.parametrize("command", ["map", "reduce"])
def test_container_runs_the_worker_with_a_120_s_stop_timeout(
    default: Synthesis, command: str
) -> None:
    settings = default.deployment.settings
    f = fleet(default.raw, command)
    container = f.container(default.raw)
    assert container["Command"] == [command]
    # The image's ENTRYPOINT is `python -m worker`; the fleet adds the role.
    assert "EntryPoint" not in container
    assert container["StopTimeout"] == settings.stop_timeout_s == 120
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    task = props(default.raw, f.task_definition)
    assert task["Cpu"] == str(settings.worker_cpu)
    assert task["Memory"] == str(settings.worker_memory_mib)
    assert task["RuntimePlatform"]["CpuArchitecture"] == "X86_64"


@pytest.mark.parametrize("command", ["map", "reduce"])
def test_the_root_filesystem_is_read_only_with_a_scratch_tmp(
    default: Synthesis, command: str
) -> None:
    f = fleet(default.raw, command)
    container = f.container(default.raw)
    assert container["ReadonlyRootFilesystem"] is True
    (mount,) = container["MountPoints"]
    assert (mount["ContainerPath"], mount["ReadOnly"]) == ("/tmp", False)
    (volume,) = props(default.raw, f.task_definition)["Volumes"]
    # A volume with no host or EFS configuration: the task's ephemeral storage.
    assert volume == {"Name": mount["SourceVolume"]}


def test_environment_names_the_resources(default: Synthesis) -> None:
    mappers, reducers = fleet(default.raw, "map"), fleet(default.raw, "reduce")
    map_env, reduce_env = mappers.environment(default.raw), reducers.environment(default.raw)
    assert set(map_env) == {
        *COMMON_ENV,
        names.ENV_MAP_DLQ_URL,
        names.ENV_CLUSTER,
        names.ENV_REDUCE_SERVICE,
        names.ENV_REDUCE_MAX_TASKS,
    }
    assert set(reduce_env) == {
        *COMMON_ENV,
        names.ENV_REDUCE_DLQ_URL,
        names.ENV_CLUSTER,
        names.ENV_MAP_SERVICE,
        names.ENV_MAP_MAX_TASKS,
    }
    for env in (map_env, reduce_env):
        assert env[names.ENV_MAP_QUEUE_URL] == {"Ref": mappers.queue}
        assert env[names.ENV_REDUCE_QUEUE_URL] == {"Ref": reducers.queue}
        assert env[names.ENV_MAX_TASK_SECONDS] == str(default.deployment.settings.max_task_s)
    # Each fleet is told what its queue was made with, so that its workers
    # need not ask the queue.
    assert map_env[names.ENV_MAP_DLQ_URL] == {"Ref": mappers.dead_letter_queue}
    assert reduce_env[names.ENV_REDUCE_DLQ_URL] == {"Ref": reducers.dead_letter_queue}
    for f, env in ((mappers, map_env), (reducers, reduce_env)):
        queue = props(default.raw, f.queue)
        assert env[names.ENV_VISIBILITY_TIMEOUT_S] == str(queue["VisibilityTimeout"])
        assert env[names.ENV_MAX_RECEIVE_COUNT] == str(queue["RedrivePolicy"]["maxReceiveCount"])
    assert map_env[names.ENV_REDUCE_SERVICE] == {"Fn::GetAtt": [reducers.service, "Name"]}
    # The other way round by a fixed name, not a reference: each task
    # definition naming the other's service by reference would be a cycle.
    assert props(default.raw, mappers.service)["ServiceName"] == "Drover-map"
    assert reduce_env[names.ENV_MAP_SERVICE] == "Drover-map"
    for env in (map_env, reduce_env):
        (cluster,) = resources(default.raw, "AWS::ECS::Cluster")
        assert env[names.ENV_CLUSTER] == {"Ref": cluster}
    # Each fleet reports its activity under its own name, unique per stack.
    assert map_env[names.ENV_ACTIVITY_FLEET] == "Drover-map"
    assert reduce_env[names.ENV_ACTIVITY_FLEET] == "Drover-reduce"


def test_every_environment_variable_is_read_by_the_worker(default: Synthesis) -> None:
    """No variable is set that nothing reads: each is read through its
    constant in worker.names (or spelled out) by the worker's code."""
    code = "\n".join(
        p.read_text() for p in (PROJECT_ROOT / "worker").rglob("*.py") if p.name != "names.py"
    )
    constants = {v: k for k, v in vars(names).items() if k.startswith("ENV_")}
    for command in ("map", "reduce"):
        for variable in fleet(default.raw, command).environment(default.raw):
            read = f"names.{constants.get(variable)}" in code or f'"{variable}"' in code
            assert read, f"{variable} is set on the {command} tasks and read by nothing"


def test_logs_are_kept_for_the_configured_days(default: Synthesis) -> None:
    days = default.deployment.settings.log_retention_days
    for command in ("map", "reduce"):
        options = fleet(default.raw, command).container(default.raw)["LogConfiguration"]["Options"]
        (log_group,) = refs(options["awslogs-group"])
        assert props(default.raw, log_group)["RetentionInDays"] == days


@pytest.mark.parametrize("command", ["map", "reduce"])
def test_tasks_get_a_public_ip_and_no_inbound_traffic(default: Synthesis, command: str) -> None:
    service = props(default.raw, fleet(default.raw, command).service)
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "ENABLED"
    for group in refs(network["SecurityGroups"]):
        assert "SecurityGroupIngress" not in props(default.raw, group)
    assert not resources(default.raw, "AWS::EC2::SecurityGroupIngress")


def test_on_demand_fargate_by_default(default: Synthesis) -> None:
    for command in ("map", "reduce"):
        service = props(default.raw, fleet(default.raw, command).service)
        assert service["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE", "Weight": 1}]


def test_spot_option_keeps_one_task_on_demand(variant: Synthesis) -> None:
    for command in ("map", "reduce"):
        service = props(variant.raw, fleet(variant.raw, command).service)
        assert service["CapacityProviderStrategy"] == [
            {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 0},
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 1},
        ]


def test_services_start_after_the_capacity_providers_are_associated(default: Synthesis) -> None:
    (association,) = resources(default.raw, "AWS::ECS::ClusterCapacityProviderAssociations")
    assert props(default.raw, association)["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    for command in ("map", "reduce"):
        assert (
            association
            in default.raw["Resources"][fleet(default.raw, command).service]["DependsOn"]
        )


def test_cluster_has_container_insights(default: Synthesis) -> None:
    default.template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )


@pytest.mark.parametrize("command", ["map", "reduce"])
def test_a_deployment_whose_tasks_keep_failing_stops_and_rolls_back(
    default: Synthesis, command: str
) -> None:
    """ECS's deployment circuit breaker: tasks that die at start-up (a job
    module the image cannot import) are not replaced without end."""
    service = props(default.raw, fleet(default.raw, command).service)
    breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == {"Enable": True, "Rollback": True}


def test_job_modules_are_built_into_the_image_and_named_to_the_workers(
    default: Synthesis, variant: Synthesis
) -> None:
    """-c jobModules=DIR: the directory is the image's "jobs" build context,
    and every worker imports its modules (the variant names tests/user,
    a directory of plain modules outside the worker package)."""
    for command in ("map", "reduce"):
        assert names.ENV_JOB_MODULES not in fleet(default.raw, command).environment(default.raw)
        env = fleet(variant.raw, command).environment(variant.raw)
        assert env[names.ENV_JOB_MODULES] == "user.statsjobs"
    (manifest,) = variant.assembly_dir.glob("*.assets.json")
    (image,) = json.loads(manifest.read_text())["dockerImages"].values()
    source = image["source"]
    assert source["dockerBuildContexts"] == {"jobs": str(variant.deployment.job_modules.directory)}
    assert source["dockerBuildArgs"] == {"JOB_PACKAGE": "user"}
