"""Queues, bucket and table: encrypted, TLS only, redriven and expired as
the settings say, and kept when the stack is deleted."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesis
from tests.infra.lookup import fleet, props, refs, resources
from worker import names

DAY_S = 24 * 60 * 60


def denies_plain_http(policy: dict) -> bool:
    return any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


@pytest.mark.parametrize("command", ["map", "reduce"])
def test_work_queue_redrives_to_its_dlq(default: Synthesis, command: str) -> None:
    settings = default.deployment.settings
    f = fleet(default.raw, command)
    queue = props(default.raw, f.queue)
    assert queue["RedrivePolicy"]["maxReceiveCount"] == settings.max_receive_count
    assert queue["VisibilityTimeout"] == settings.visibility_timeout_s
    assert queue["ReceiveMessageWaitTimeSeconds"] == settings.receive_wait_s
    dlq = props(default.raw, f.dead_letter_queue)
    assert dlq["MessageRetentionPeriod"] == 14 * DAY_S == settings.dlq_retention_days * DAY_S
    # SQS dates a dead letter from its first enqueue: the DLQ must outlive it.
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_the_two_work_queues_are_distinct(default: Synthesis) -> None:
    mappers, reducers = fleet(default.raw, "map"), fleet(default.raw, "reduce")
    assert mappers.queue != reducers.queue
    assert mappers.dead_letter_queue != reducers.dead_letter_queue


def test_every_queue_is_encrypted_and_refuses_plain_http(default: Synthesis) -> None:
    queues = resources(default.raw, "AWS::SQS::Queue")
    assert len(queues) == 4
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    guarded = {
        queue_id
        for policy in resources(default.raw, "AWS::SQS::QueuePolicy").values()
        if denies_plain_http(policy)
        for queue_id in refs(policy["Properties"]["Queues"])
    }
    assert guarded == set(queues)


def test_every_bucket_is_encrypted_private_tls_only_and_retained(default: Synthesis) -> None:
    buckets = resources(default.raw, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket_id, bucket in buckets.items():
        p = bucket["Properties"]
        assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert p["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["UpdateReplacePolicy"] == "Retain"
        (policy,) = [
            v
            for v in resources(default.raw, "AWS::S3::BucketPolicy").values()
            if bucket_id in refs(v["Properties"]["Bucket"])
        ]
        assert denies_plain_http(policy)


def test_job_bucket_logs_access_and_expires_map_outputs(default: Synthesis) -> None:
    settings = default.deployment.settings
    default.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value()},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        {
                            "Id": "ExpireMapOutputs",
                            "Status": "Enabled",
                            "Prefix": names.MAP_OUTPUT_PREFIX,
                            "TagFilters": [
                                {
                                    "Key": names.MAP_OUTPUT_TAG_KEY,
                                    "Value": names.MAP_OUTPUT_TAG_VALUE,
                                }
                            ],
                            "ExpirationInDays": settings.map_output_expiry_days,
                        },
                        {
                            "Id": "ExpireInputs",
                            "Status": "Enabled",
                            "Prefix": names.MAP_OUTPUT_PREFIX,
                            "TagFilters": [
                                {"Key": names.MAP_OUTPUT_TAG_KEY, "Value": names.INPUT_TAG_VALUE}
                            ],
                            "ExpirationInDays": settings.input_expiry_days,
                        },
                        Match.object_like(
                            {
                                "Status": "Enabled",
                                "AbortIncompleteMultipartUpload": {
                                    "DaysAfterInitiation": Match.any_value()
                                },
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_jobs_table(default: Synthesis) -> None:
    default.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": names.TABLE_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": names.TABLE_SORT_KEY, "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": Match.array_with(
                    [
                        {"AttributeName": name, "AttributeType": "S"}
                        for name in (
                            names.TABLE_PARTITION_KEY,
                            names.TABLE_SORT_KEY,
                            names.JOBS_BY_TIME_PARTITION_KEY,
                            names.JOBS_BY_TIME_SORT_KEY,
                        )
                    ]
                ),
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": names.JOBS_BY_TIME_INDEX,
                        "KeySchema": [
                            {"AttributeName": names.JOBS_BY_TIME_PARTITION_KEY, "KeyType": "HASH"},
                            {"AttributeName": names.JOBS_BY_TIME_SORT_KEY, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                "TimeToLiveSpecification": {
                    "AttributeName": names.TABLE_TTL_ATTRIBUTE,
                    "Enabled": True,
                },
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        },
    )
