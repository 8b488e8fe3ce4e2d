"""Which Drover a command talks to: the running embedded AWS, or a deployed
stack found by name through CloudFormation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import NoCredentialsError, NoRegionError

from submit.clients import Clients
from submit.embedded import local_client
from submit.errors import UsageError
from submit.local import fleet_problem, running_state
from submit.resources import ResourceError, Resources, from_stack
from worker.clients import client
from worker.ecs import Service, Wake, Waker
from worker.jobs import job_class
from worker.jobs.registry import BUILTIN_MODULES, module_name
from worker.ledger import Phase
from worker.names import DEFAULT_STACK_NAME


@dataclass(frozen=True)
class Target:
    clients: Clients
    resources: Resources
    description: str
    local: bool
    # Starts workers for queued work at once, where that is possible.
    wake: Wake | None = None
    # The job modules its workers load, where that is known.
    job_modules: tuple[str, ...] | None = None
    # Why its workers cannot work (a local pool that gave up), where known.
    fleet_problem: Callable[[], str | None] | None = None
    # Waits up to the seconds given, less when its fleet's queues drain (a
    # local fleet watches them): a job's end is seen at once, at no request.
    nap: Callable[[float], object] | None = None

    def problem(self) -> str | None:
        return self.fleet_problem() if self.fleet_problem is not None else None

    def check_loads(self, job: str) -> None:
        """Refuse a job whose module the workers do not load, when that is
        known: queued, its chunks could only fail."""
        module = job_class(job).__module__
        if self.job_modules is None or module in BUILTIN_MODULES:
            return
        loaded = {module_name(m)[0] for m in self.job_modules}
        if module not in loaded and module.split(".")[0] not in loaded:
            raise UsageError(
                f"job {job!r} comes from module {module!r}, which the workers of "
                f"{self.description} do not load; start them with `--job-module` naming it "
                "(`python -m submit local up --job-module ...`)"
            )


def local_target(
    endpoint_url: str,
    resources: Resources,
    wake: Wake | None = None,
    job_modules: tuple[str, ...] | None = None,
    fleet_problem: Callable[[], str | None] | None = None,
    clients: Clients | None = None,
    nap: Callable[[float], object] | None = None,
) -> Target:
    return Target(
        clients=clients
        or Clients(
            s3=local_client("s3", endpoint_url),
            sqs=local_client("sqs", endpoint_url),
            dynamodb=local_client("dynamodb", endpoint_url),
        ),
        resources=resources,
        description=f"embedded AWS at {endpoint_url}",
        local=True,
        wake=wake,
        job_modules=job_modules,
        fleet_problem=fleet_problem,
        nap=nap,
    )


def fleet_job_modules(stack: str | None) -> tuple[str, ...]:
    """The job modules of the running embedded AWS's fleet, where it is the
    target (no `--stack`): a command against it knows its jobs without
    `--job-module`. Read from its state file, at no request."""
    state = running_state() if stack is None else None
    return tuple(state.job_modules) if state is not None else ()


def resolve(stack: str | None) -> Target:
    """`--stack NAME` if given; else the running embedded AWS if there is
    one; else the deployed stack of the default name."""
    if stack is None:
        state = running_state()
        if state is not None:
            return local_target(
                state.endpoint_url,
                state.resources,
                job_modules=tuple(state.job_modules),
                fleet_problem=fleet_problem,
            )
    name = stack or DEFAULT_STACK_NAME
    try:
        resources = from_stack(client("cloudformation"), name)
        ecs = client("ecs")
        return Target(
            clients=Clients(
                s3=client("s3"), sqs=client("sqs"), dynamodb=client("dynamodb"), ecs=ecs
            ),
            resources=resources,
            description=f"stack {name}",
            local=False,
            wake=deployed_wake(ecs, resources),
        )
    except (NoCredentialsError, NoRegionError) as e:
        hint = "" if stack else " No embedded AWS is running either (`python -m submit local up`)."
        raise ResourceError(f"cannot reach stack {name!r}: {str(e).rstrip('.')}.{hint}") from e


def deployed_wake(ecs: Any, resources: Resources) -> Wake | None:
    """The stack's services, bounded by the maxima the stack was deployed
    with (its outputs), whatever the local cdk.json says."""
    if not resources.cluster:
        return None
    services = {
        phase.value: Service(name, max_tasks)
        for phase, name, max_tasks in (
            (Phase.MAP, resources.map_service, resources.map_max_tasks),
            (Phase.REDUCE, resources.reduce_service, resources.reduce_max_tasks),
        )
        if name and max_tasks
    }
    return Waker(ecs, cluster=resources.cluster, services=services)
