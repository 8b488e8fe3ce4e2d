"""Which Drover a command talks to: the running embedded AWS, or a deployed
stack found by name through CloudFormation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import NoCredentialsError, NoRegionError

from submit.clients import Clients
from submit.embedded import local_client
from submit.local import running_state
from submit.resources import ResourceError, Resources, from_stack
from worker.clients import client
from worker.ecs import wake_service
from worker.ledger import Phase
from worker.names import DEFAULT_STACK_NAME
from worker.settings import load as load_settings


@dataclass(frozen=True)
class Target:
    clients: Clients
    resources: Resources
    description: str
    local: bool
    # Starts workers of a phase for n queued messages at once, where that is
    # possible.
    wake: Callable[[Phase, int], object] | None = None


def local_target(
    endpoint_url: str, resources: Resources, wake: Callable[[Phase, int], object] | None = None
) -> Target:
    return Target(
        clients=Clients(
            s3=local_client("s3", endpoint_url),
            sqs=local_client("sqs", endpoint_url),
            dynamodb=local_client("dynamodb", endpoint_url),
        ),
        resources=resources,
        description=f"embedded AWS at {endpoint_url}",
        local=True,
        wake=wake,
    )


def resolve(stack: str | None) -> Target:
    """`--stack NAME` if given; else the running embedded AWS if there is
    one; else the deployed stack of the default name."""
    if stack is None:
        state = running_state()
        if state is not None:
            return local_target(state.endpoint_url, state.resources)
    name = stack or DEFAULT_STACK_NAME
    try:
        resources = from_stack(client("cloudformation"), name)
        ecs = client("ecs")
        settings = load_settings()

        def wake(phase: Phase, messages: int) -> object:
            service = resources.map_service if phase is Phase.MAP else resources.reduce_service
            most = settings.max_workers if phase is Phase.MAP else settings.max_reducers
            if not (resources.cluster and service):
                return None
            return wake_service(
                ecs, cluster=resources.cluster, service=service, at_least=min(messages, most)
            )

        return Target(
            clients=Clients(
                s3=client("s3"), sqs=client("sqs"), dynamodb=client("dynamodb"), ecs=ecs
            ),
            resources=resources,
            description=f"stack {name}",
            local=False,
            wake=wake,
        )
    except (NoCredentialsError, NoRegionError) as e:
        hint = "" if stack else " No embedded AWS is running either (`python -m submit local up`)."
        raise ResourceError(f"cannot reach stack {name!r}: {e}.{hint}") from e
