"""The cost estimate of a benchmark run, at the list prices in worker.prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from worker.prices import (
    DYNAMODB_PER_MILLION_RRU_USD,
    DYNAMODB_PER_MILLION_WRU_USD,
    FARGATE_SPOT_DISCOUNT,
    PRICES_AS_OF,
    S3_GET_PER_THOUSAND_USD,
    S3_PUT_PER_THOUSAND_USD,
    SQS_PER_MILLION_USD,
    fargate_task_hour_usd,
)

__all__ = ["PRICES_AS_OF", "Cost", "estimate", "requests_usd"]

S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "ListObjects",
        "ListObjectsV2",
        "PutObjectTagging",
    }
)
S3_GET_CLASS = frozenset({"GetObject", "HeadObject", "GetObjectTagging"})
# Write units per call of up to 1 KB per item; a transaction costs two per item.
DYNAMODB_WRU = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1}
# Read units per call (strongly consistent, up to 4 KB).
DYNAMODB_RRU = {"GetItem": 1, "Query": 1, "Scan": 1}


@dataclass(frozen=True)
class Cost:
    compute_usd: float
    spot_compute_usd: float
    requests_usd: float

    @property
    def fargate_usd(self) -> float:
        return self.compute_usd + self.requests_usd

    @property
    def spot_usd(self) -> float:
        return self.spot_compute_usd + self.requests_usd


def requests_usd(requests: Mapping[str, int], transaction_items: int) -> float:
    """What a run's requests cost; keys are "service.Operation"."""
    usd = transaction_items * 2 * DYNAMODB_PER_MILLION_WRU_USD / 1e6
    for key, n in requests.items():
        service, operation = key.split(".", 1)
        if service == "sqs":
            usd += n * SQS_PER_MILLION_USD / 1e6
        elif service == "s3" and operation in S3_PUT_CLASS:
            usd += n * S3_PUT_PER_THOUSAND_USD / 1e3
        elif service == "s3" and operation in S3_GET_CLASS:
            usd += n * S3_GET_PER_THOUSAND_USD / 1e3
        elif service == "dynamodb":
            usd += n * DYNAMODB_WRU.get(operation, 0) * DYNAMODB_PER_MILLION_WRU_USD / 1e6
            usd += n * DYNAMODB_RRU.get(operation, 0) * DYNAMODB_PER_MILLION_RRU_USD / 1e6
    return usd


def estimate(
    *, cpu_s: float, vcpu: float, memory_gb: float, requests: Mapping[str, int], items: int
) -> Cost:
    """Cost of a run whose tasks were busy for `cpu_s` CPU-seconds, each task
    of `vcpu` vCPUs and `memory_gb` GB, billed as if it ran only while busy."""
    task_hours = cpu_s / vcpu / 3600
    compute = task_hours * fargate_task_hour_usd(vcpu=vcpu, memory_gb=memory_gb)
    return Cost(
        compute_usd=compute,
        spot_compute_usd=compute * (1 - FARGATE_SPOT_DISCOUNT),
        requests_usd=requests_usd(requests, items),
    )
