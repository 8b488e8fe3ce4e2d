"""Public list prices, us-east-1, and the cost estimate built from them.

Fargate (Linux/x86) on-demand: $0.04048 per vCPU-hour and $0.004445 per
GB-hour, as on the AWS Fargate pricing page and its reproductions dated
March 2026. Fargate Spot has no fixed price: AWS quotes "up to 70%" off
on-demand and the current rate moves with supply (50-70% off); we take 70%.
SQS standard $0.40 per million requests; S3 Standard PUT/COPY/POST/LIST
$0.005 per 1,000 and GET $0.0004 per 1,000; DynamoDB on-demand $0.625 per
million write request units and $0.125 per million read request units (the
November 2024 prices). Free tiers are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PRICES_AS_OF = "2026-03"
FARGATE_VCPU_HOUR_USD = 0.04048
FARGATE_GB_HOUR_USD = 0.004445
FARGATE_SPOT_DISCOUNT = 0.70
SQS_PER_MILLION_USD = 0.40
S3_PUT_PER_THOUSAND_USD = 0.005
S3_GET_PER_THOUSAND_USD = 0.0004
DYNAMODB_PER_MILLION_WRU_USD = 0.625
DYNAMODB_PER_MILLION_RRU_USD = 0.125

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
    compute = task_hours * (vcpu * FARGATE_VCPU_HOUR_USD + memory_gb * FARGATE_GB_HOUR_USD)
    return Cost(
        compute_usd=compute,
        spot_compute_usd=compute * (1 - FARGATE_SPOT_DISCOUNT),
        requests_usd=requests_usd(requests, items),
    )
