"""The AWS clients a command works with, and the ledger it reads through them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.ledger.admin import Admin

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from submit.resources import Resources


@dataclass
class Clients:
    s3: S3Client
    sqs: SQSClient
    dynamodb: DynamoDBClient
    ecs: ECSClient | None = None

    def ledger(self, resources: Resources) -> Admin:
        return Admin(dynamodb=self.dynamodb, table=resources.table)
