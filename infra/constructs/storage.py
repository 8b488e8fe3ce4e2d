"""The job bucket and the jobs table.

Both are retained when the stack is deleted: they hold users' inputs,
results and job history, which `cdk destroy` must not take with it.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from worker.names import (
    INPUT_TAG_VALUE,
    JOBS_BY_TIME_INDEX,
    JOBS_BY_TIME_PARTITION_KEY,
    JOBS_BY_TIME_SORT_KEY,
    MAP_OUTPUT_PREFIX,
    MAP_OUTPUT_TAG_KEY,
    MAP_OUTPUT_TAG_VALUE,
    TABLE_PARTITION_KEY,
    TABLE_SORT_KEY,
    TABLE_TTL_ATTRIBUTE,
)

# An upload that has not completed in a day was abandoned by a stopped task;
# its parts would otherwise be billed forever.
ABORT_INCOMPLETE_UPLOADS_DAYS = 1


class Storage(Construct):
    """`bucket` holds job inputs, map outputs and results (layout in
    `worker.storage`); `table` holds job and chunk records (`worker.ledger`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        map_output_expiry_days: int,
        input_expiry_days: int,
        access_log_expiry_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(access_log_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(
                        ABORT_INCOMPLETE_UPLOADS_DAYS
                    ),
                )
            ],
        )

        self.bucket = s3.Bucket(
            self,
            "Jobs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="jobs-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # S3 filters by prefix and tag, not by a pattern such as
                # jobs/*/map/: the worker tags each map output it writes.
                s3.LifecycleRule(
                    id="ExpireMapOutputs",
                    prefix=MAP_OUTPUT_PREFIX,
                    tag_filters={MAP_OUTPUT_TAG_KEY: MAP_OUTPUT_TAG_VALUE},
                    expiration=Duration.days(map_output_expiry_days),
                ),
                # Inputs submit uploaded and chunk plans (jobs/*/input/),
                # which submit tags: kept a few days longer than the map
                # outputs, since `retry` reads both again.
                s3.LifecycleRule(
                    id="ExpireInputs",
                    prefix=MAP_OUTPUT_PREFIX,
                    tag_filters={MAP_OUTPUT_TAG_KEY: INPUT_TAG_VALUE},
                    expiration=Duration.days(input_expiry_days),
                ),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(
                        ABORT_INCOMPLETE_UPLOADS_DAYS
                    ),
                ),
            ],
        )

        self.table = dynamodb.Table(
            self,
            "JobsTable",
            partition_key=dynamodb.Attribute(
                name=TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TABLE_TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name=JOBS_BY_TIME_INDEX,
            partition_key=dynamodb.Attribute(
                name=JOBS_BY_TIME_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=JOBS_BY_TIME_SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
