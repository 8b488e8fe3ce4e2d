"""Where a Drover lives: the names and URLs of its bucket, table and queues.

For a deployed stack they come from the stack's CloudFormation outputs; for
the embedded AWS from the state file that `local up` writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from submit.embedded_process import drover_home
from submit.errors import OperationalError
from worker import names
from worker.settings import Settings


class ResourceError(OperationalError):
    """No Drover found where the user pointed."""


@dataclass(frozen=True)
class Resources:
    bucket: str
    table: str
    map_queue_url: str
    map_dlq_url: str
    reduce_queue_url: str
    reduce_dlq_url: str
    cluster: str | None = None
    map_service: str | None = None
    reduce_service: str | None = None
    endpoint_url: str | None = None
    # The deployed fleets' maxima, which bound a wake-up.
    map_max_tasks: int | None = None
    reduce_max_tasks: int | None = None
    # The buckets map workers may read inputs from in place; None: any (the
    # embedded AWS checks no permissions).
    input_buckets: tuple[str, ...] | None = None
    # The task size a job's cost is estimated at: the deployed one, or for
    # the embedded AWS cdk.json's (`local`).
    task_cpu: int = Settings().worker_cpu
    task_memory_mib: int = Settings().worker_memory_mib
    local: bool = False

    def worker_env(self) -> dict[str, str]:
        """The environment a worker process needs to serve these resources."""
        return {
            names.ENV_TABLE: self.table,
            names.ENV_MAP_QUEUE_URL: self.map_queue_url,
            names.ENV_REDUCE_QUEUE_URL: self.reduce_queue_url,
            names.ENV_MAP_DLQ_URL: self.map_dlq_url,
            names.ENV_REDUCE_DLQ_URL: self.reduce_dlq_url,
        }


def from_stack(cloudformation: Any, stack: str) -> Resources:
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        raise ResourceError(
            f"stack {stack!r} not found ({e.response['Error'].get('Message', e)}); "
            "deploy it with `cdk deploy`, or use --local"
        ) from e
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}
    missing = [k for k in names.ALL_OUTPUTS if k not in outputs]
    if missing:
        raise ResourceError(
            f"stack {stack!r} lacks outputs {missing}: is it a Drover stack? (A stack "
            "deployed by an older Drover gains them with `cdk deploy`.)"
        )
    return Resources(
        bucket=outputs[names.OUTPUT_BUCKET],
        table=outputs[names.OUTPUT_TABLE],
        map_queue_url=outputs[names.OUTPUT_MAP_QUEUE_URL],
        map_dlq_url=outputs[names.OUTPUT_MAP_DLQ_URL],
        reduce_queue_url=outputs[names.OUTPUT_REDUCE_QUEUE_URL],
        reduce_dlq_url=outputs[names.OUTPUT_REDUCE_DLQ_URL],
        cluster=outputs[names.OUTPUT_CLUSTER],
        map_service=outputs[names.OUTPUT_MAP_SERVICE],
        reduce_service=outputs[names.OUTPUT_REDUCE_SERVICE],
        map_max_tasks=int(outputs[names.OUTPUT_MAP_MAX_TASKS]),
        reduce_max_tasks=int(outputs[names.OUTPUT_REDUCE_MAX_TASKS]),
        input_buckets=tuple(json.loads(outputs[names.OUTPUT_INPUT_BUCKETS])),
        task_cpu=int(outputs[names.OUTPUT_TASK_CPU]),
        task_memory_mib=int(outputs[names.OUTPUT_TASK_MEMORY_MIB]),
    )


def state_path() -> Path:
    return drover_home() / "local.json"


@dataclass(frozen=True)
class LocalState:
    pid: int
    port: int
    endpoint_url: str
    max_workers: int
    resources: Resources
    # The job modules its workers load, as `local up --job-module` named them.
    job_modules: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @staticmethod
    def read(path: Path) -> LocalState | None:
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return LocalState(
            pid=raw["pid"],
            port=raw["port"],
            endpoint_url=raw["endpoint_url"],
            max_workers=raw["max_workers"],
            resources=Resources(**raw["resources"]),
            job_modules=list(raw.get("job_modules", [])),
        )


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
