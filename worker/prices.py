"""Public list prices, us-east-1: the one place Drover's cost estimates read.

Fargate (Linux/x86) on-demand: $0.04048 per vCPU-hour and $0.004445 per
GB-hour, as on the AWS Fargate pricing page and its reproductions dated
March 2026, billed per second from image pull to task stop with a one-minute
minimum. Fargate Spot has no fixed price: AWS quotes "up to 70%" off
on-demand and the current rate moves with supply (50-70% off); we take 70%.
SQS standard $0.40 per million requests; S3 Standard PUT/COPY/POST/LIST
$0.005 per 1,000 and GET $0.0004 per 1,000; DynamoDB on-demand $0.625 per
million write request units and $0.125 per million read request units (the
November 2024 prices). A public IPv4 address, which each Fargate task has
(the stack runs tasks in public subnets, without a NAT gateway), costs
$0.005 an hour since February 2024. Free tiers are left out.

Plain data, like worker.settings: the benchmark, the scaling simulator and
the CLI import it, and so may the container image.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-03"
FARGATE_VCPU_HOUR_USD = 0.04048
FARGATE_GB_HOUR_USD = 0.004445
FARGATE_SPOT_DISCOUNT = 0.70
FARGATE_MINIMUM_BILLED_S = 60
SQS_PER_MILLION_USD = 0.40
S3_PUT_PER_THOUSAND_USD = 0.005
S3_GET_PER_THOUSAND_USD = 0.0004
DYNAMODB_PER_MILLION_WRU_USD = 0.625
DYNAMODB_PER_MILLION_RRU_USD = 0.125
PUBLIC_IPV4_HOUR_USD = 0.005


def fargate_task_hour_usd(*, vcpu: float, memory_gb: float) -> float:
    """What one on-demand task of this size costs an hour."""
    return vcpu * FARGATE_VCPU_HOUR_USD + memory_gb * FARGATE_GB_HOUR_USD


def fargate_billed_s(run_s: float) -> float:
    """Seconds Fargate bills for a task that ran `run_s` seconds."""
    return max(float(FARGATE_MINIMUM_BILLED_S), run_s)
