"""What a job cost on AWS, estimated from what its workers recorded.

Each chunk and partition item records the seconds its worker spent on it
(`map_seconds`, `reduce_seconds`), and the completion that counts it adds
them to the job item's sums (worker.ledger.Work), which is where they are
read; a job created before the job item kept them has its items read
instead (`work_of`). Their sum is the job's busy task-seconds,
priced at the deployed task size (the stack's TaskCpu and TaskMemoryMiB
outputs; locally, cdk.json's) on Fargate and on Fargate Spot, plus each
task's public IPv4 address for those seconds, plus the requests the
protocol makes for that many chunks and partitions (below), all at the
list prices of worker.prices.

The estimate leaves out what no item records: the idle tail of a fleet
before it scales in (about 17 minutes by default, README "Scaling"),
Fargate's one-minute minimum per task, attempts that failed, and storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from worker import prices
from worker import settings as cfg
from worker.ledger import ItemRecord, ItemState, Work

LEAVES_OUT = (
    "leaves out the fleets' idle tails before scale-in, Fargate's one-minute minimum "
    "per task, failed attempts and storage"
)
LOCAL_BASIS = "an estimate of what the same job would cost on AWS, at cdk.json's task size"
DEPLOYED_BASIS = "an estimate at the deployed task size"

# Requests per chunk: one receive, a tenth of a batched send and of a
# batched delete, one ranged GET (chunks of several files make more), a PUT
# per partition, and one transaction of two items (two write units each).
# Per partition: a tenth of a send and of a delete, a receive, a GET per
# chunk, one PUT, one transaction. Per job: the job item, its chunk plan,
# the reduce's summaries and the final update. A message in hand has its
# visibility extended every third of the visibility timeout, and its job
# state read at most every few seconds.
SQS_PER_MESSAGE = 1.2
S3_GET_PER_CHUNK = 1
WRITE_UNITS_PER_ITEM = 4
JOB_WRITE_UNITS = 2
JOB_PUTS = 1
JOB_READ_UNITS = 1
STATE_READ_EVERY_S = 5.0


@dataclass(frozen=True)
class JobCost:
    task_s: float
    vcpu: float
    memory_gb: float
    compute_usd: float
    spot_compute_usd: float
    ipv4_usd: float
    requests_usd: float
    local: bool

    @property
    def fargate_usd(self) -> float:
        return self.compute_usd + self.ipv4_usd + self.requests_usd

    @property
    def spot_usd(self) -> float:
        return self.spot_compute_usd + self.ipv4_usd + self.requests_usd

    @property
    def basis(self) -> str:
        return LOCAL_BASIS if self.local else DEPLOYED_BASIS

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated_usd": round(self.fargate_usd, 9),
            "estimated_spot_usd": round(self.spot_usd, 9),
            "task_seconds": round(self.task_s, 3),
            "vcpu": self.vcpu,
            "memory_gb": self.memory_gb,
            "compute_usd": round(self.compute_usd, 9),
            "spot_compute_usd": round(self.spot_compute_usd, 9),
            "public_ipv4_usd": round(self.ipv4_usd, 9),
            "requests_usd": round(self.requests_usd, 9),
            "prices_as_of": prices.PRICES_AS_OF,
            "basis": self.basis,
            "leaves_out": LEAVES_OUT,
        }


def work_of(items: Iterable[ItemRecord]) -> Work:
    """The Work of a job's done items: what its job item sums as they
    complete, summed from the items themselves."""
    map_s, chunks, reduce_s, partitions = 0.0, 0, 0.0, 0
    for item in items:
        if item.state is not ItemState.DONE:
            continue
        if item.map_seconds is not None:
            map_s += item.map_seconds
            chunks += 1
        if item.reduce_seconds is not None:
            reduce_s += item.reduce_seconds
            partitions += 1
    return Work(map_s=map_s, chunks=chunks, reduce_s=reduce_s, partitions=partitions)


def requests_usd(*, task_s: float, chunks: int, partitions: int) -> float:
    visibility_s = cfg.Settings().visibility_timeout_s
    sqs = SQS_PER_MESSAGE * (chunks + partitions) + task_s / (visibility_s / 3)
    gets = S3_GET_PER_CHUNK * chunks + chunks * partitions
    puts = chunks * partitions + partitions + JOB_PUTS
    writes = WRITE_UNITS_PER_ITEM * (chunks + partitions) + JOB_WRITE_UNITS
    reads = JOB_READ_UNITS + task_s / STATE_READ_EVERY_S
    return (
        sqs * prices.SQS_PER_MILLION_USD / 1e6
        + gets * prices.S3_GET_PER_THOUSAND_USD / 1e3
        + puts * prices.S3_PUT_PER_THOUSAND_USD / 1e3
        + writes * prices.DYNAMODB_PER_MILLION_WRU_USD / 1e6
        + reads * prices.DYNAMODB_PER_MILLION_RRU_USD / 1e6
    )


def estimate(work: Work, *, cpu_units: int, memory_mib: int, local: bool) -> JobCost:
    task_s, chunks, partitions = work.task_s, work.chunks, work.partitions
    vcpu, memory_gb = cpu_units / 1024, memory_mib / 1024
    task_hours = task_s / 3600
    compute = task_hours * prices.fargate_task_hour_usd(vcpu=vcpu, memory_gb=memory_gb)
    return JobCost(
        task_s=task_s,
        vcpu=vcpu,
        memory_gb=memory_gb,
        compute_usd=compute,
        spot_compute_usd=compute * (1 - prices.FARGATE_SPOT_DISCOUNT),
        ipv4_usd=task_hours * prices.PUBLIC_IPV4_HOUR_USD,
        requests_usd=requests_usd(task_s=task_s, chunks=chunks, partitions=partitions),
        local=local,
    )
