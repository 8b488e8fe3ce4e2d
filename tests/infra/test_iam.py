"""Each fleet's task role may do what its worker's code calls, on the
narrowest resources, and nothing else. The calls are read from the code
(tests/infra/used_calls.py), not from a list kept by hand."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from infra import permissions
from tests.infra.conftest import Synthesis
from tests.infra.lookup import as_list, fleet, props, refs, resources
from tests.infra.used_calls import used_actions
from worker import storage
from worker.names import MAP_OUTPUT_TAG_KEY, MAP_OUTPUT_TAG_VALUE

# Actions that do not support resource-level permissions.
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken"}
# What ECS itself does with a task's execution role: pull the image from the
# CDK asset repository and write the container's log stream.
EXECUTION_ROLE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]


def all_statements(s: Synthesis) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(s.raw, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in as_list(s["Action"])}


def object_patterns(statements: list[dict[str, Any]], action: str, bucket: str) -> set[str]:
    """The key patterns of the job bucket's objects that `action` is granted on."""
    patterns = set()
    for statement in statements_with(statements, action):
        for resource in as_list(statement["Resource"]):
            joined = resource.get("Fn::Join", [None, []])[1] if isinstance(resource, dict) else []
            if joined and joined[0] == {"Fn::GetAtt": [bucket, "Arn"]}:
                patterns.add("".join(joined[1:]).lstrip("/"))
    return patterns


def job_bucket(s: Synthesis) -> str:
    (bucket,) = [
        k
        for k, v in resources(s.raw, "AWS::S3::Bucket").items()
        if "LoggingConfiguration" in v["Properties"]
    ]
    return bucket


@pytest.mark.parametrize("command", ["map", "reduce"])
def test_every_granted_action_is_one_the_worker_code_calls(
    default: Synthesis, variant: Synthesis, command: str
) -> None:
    used = used_actions()
    for s in (default, variant):
        granted = actions_of(fleet(s.raw, command).policy_statements(s.raw))
        assert granted - used == set(), f"granted, but no code calls them ({command})"


def test_the_code_scan_finds_the_calls_it_must() -> None:
    """A scan that found nothing would pass the test above for any policy."""
    used = used_actions()
    assert {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",  # only ever batched: DeleteMessageBatch
        "dynamodb:PutItem",  # only ever in a transaction, as Put
        "s3:PutObjectTagging",
        "s3:ListBucket",  # as ListObjectsV2, through a paginator
        "ecs:UpdateTaskProtection",  # HTTP to the ECS agent, no boto3 call
    } <= used
    # Nothing calls these, which the roles had once.
    assert (
        not {
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "s3:AbortMultipartUpload",
            "ecs:GetTaskProtection",
        }
        & used
    )


def test_the_execution_roles_only_pull_the_image_and_write_logs(default: Synthesis) -> None:
    for command in ("map", "reduce"):
        task_definition = props(default.raw, fleet(default.raw, command).task_definition)
        (role,) = refs(task_definition["ExecutionRoleArn"])
        granted = {
            a
            for policy in resources(default.raw, "AWS::IAM::Policy").values()
            if role in refs(policy["Properties"]["Roles"])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for a in as_list(statement["Action"])
        }
        assert granted == EXECUTION_ROLE_ACTIONS


def test_no_star_resource_where_an_arn_exists(default: Synthesis, variant: Synthesis) -> None:
    for s in (default, variant):
        for statement in all_statements(s):
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= NO_RESOURCE_LEVEL, statement


def test_no_wildcard_actions(default: Synthesis) -> None:
    for statement in all_statements(default):
        for action in as_list(statement["Action"]):
            assert not action.endswith(":*"), statement


def test_workers_reach_only_their_own_queues(default: Synthesis) -> None:
    mappers, reducers = fleet(default.raw, "map"), fleet(default.raw, "reduce")
    for f, sends_to in (
        (mappers, {mappers.dead_letter_queue, reducers.queue}),
        # The last reducer of a step of a job of several queues the next step.
        (reducers, {reducers.dead_letter_queue, mappers.queue}),
    ):
        statements = f.policy_statements(default.raw)
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
            assert {r for st in statements_with(statements, action) for r in refs(st)} == {f.queue}
        sent = {r for st in statements_with(statements, "sqs:SendMessage") for r in refs(st)}
        assert sent == sends_to
        # The DLQ's URL is looked up by name (its redrive policy holds its ARN).
        (lookup,) = statements_with(statements, "sqs:GetQueueUrl")
        assert set(refs(lookup)) == {f.dead_letter_queue}


def test_map_workers_write_only_map_outputs_and_reducers_only_results(
    default: Synthesis,
) -> None:
    bucket = job_bucket(default)
    mappers = fleet(default.raw, "map").policy_statements(default.raw)
    reducers = fleet(default.raw, "reduce").policy_statements(default.raw)
    # A later step's map reads the previous step's results.
    assert object_patterns(mappers, "s3:GetObject", bucket) == {
        permissions.INPUT_KEYS,
        permissions.RESULT_KEYS,
    }
    assert object_patterns(mappers, "s3:PutObject", bucket) == {permissions.MAP_OUTPUT_KEYS}
    assert object_patterns(mappers, "s3:PutObjectTagging", bucket) == {permissions.MAP_OUTPUT_KEYS}
    assert object_patterns(reducers, "s3:GetObject", bucket) == {permissions.MAP_OUTPUT_KEYS}
    # Results, tagged before a job's last step, and a later step's plan.
    for action in ("s3:PutObject", "s3:PutObjectTagging"):
        assert object_patterns(reducers, action, bucket) == {
            permissions.RESULT_KEYS,
            permissions.STEP_PLAN_KEYS,
        }
    for statements in (mappers, reducers):
        (listing,) = statements_with(statements, "s3:ListBucket")
        assert listing["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}


def test_map_workers_read_only_intermediate_results(default: Synthesis) -> None:
    """Only a step's results before the last carry the intermediate tag
    (worker.phases, tests/worker/test_phases.py); a job's final result does
    not, and the map role may not read it."""
    bucket = job_bucket(default)
    mappers = fleet(default.raw, "map").policy_statements(default.raw)
    (results,) = [
        st
        for st in statements_with(mappers, "s3:GetObject")
        if object_patterns([st], "s3:GetObject", bucket) == {permissions.RESULT_KEYS}
    ]
    assert results["Condition"] == {
        "StringEquals": {
            f"s3:ExistingObjectTag/{MAP_OUTPUT_TAG_KEY}": MAP_OUTPUT_TAG_VALUE,
        }
    }


def test_the_key_patterns_follow_the_storage_layout() -> None:
    job = "20260101-000000-abcdef"
    keys = {
        permissions.INPUT_KEYS: [f"{storage.input_prefix(job)}pack-0000", storage.plan_key(job)],
        permissions.MAP_OUTPUT_KEYS: [storage.map_key(job, 12, 3), storage.map_key(job, 12, 3, 1)],
        permissions.RESULT_KEYS: [storage.result_key(job, 3), storage.result_key(job, 3, 2)],
        permissions.STEP_PLAN_KEYS: [storage.plan_key(job, 1), storage.plan_key(job, 2)],
    }
    for pattern, examples in keys.items():
        for key in examples:
            matching = {p for p in keys if fnmatch.fnmatchcase(key, p)}
            assert matching == {pattern}, key


def test_workers_use_the_table_but_not_its_index(default: Synthesis) -> None:
    (table,) = resources(default.raw, "AWS::DynamoDB::Table")
    for command in ("map", "reduce"):
        statements = fleet(default.raw, command).policy_statements(default.raw)
        (table_statement,) = statements_with(statements, "dynamodb:UpdateItem")
        assert set(as_list(table_statement["Action"])) == set(permissions.TABLE)
        # `jobs` lists jobs through the index; workers never do.
        assert table_statement["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
        (protection,) = statements_with(statements, "ecs:UpdateTaskProtection")
        assert as_list(protection["Action"]) == ["ecs:UpdateTaskProtection"]


@pytest.mark.parametrize(("waker", "woken"), [("map", "reduce"), ("reduce", "map")])
def test_each_fleet_wakes_the_other_service_and_changes_nothing_else_iam_can_hold(
    default: Synthesis, waker: str, woken: str
) -> None:
    """Map workers wake the reducers when a step's map completes; reducers
    wake the map workers when they start a job's next step."""
    waking, other = fleet(default.raw, waker), fleet(default.raw, woken)
    (cluster,) = resources(default.raw, "AWS::ECS::Cluster")
    statements = waking.policy_statements(default.raw)
    (describe,) = statements_with(statements, "ecs:DescribeServices")
    (update,) = statements_with(statements, "ecs:UpdateService")
    for statement in (describe, update):
        assert statement["Resource"] == {"Ref": other.service}
    assert as_list(update["Action"]) == ["ecs:UpdateService"]
    conditions = update["Condition"]
    assert conditions["ArnEquals"] == {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}
    assert conditions["ArnEqualsIfExists"] == {
        "ecs:task-definition": {"Ref": other.task_definition}
    }
    assert conditions["BoolIfExists"] == {"ecs:enable-execute-command": "false"}
    # Neither may change its own service.
    for statement in statements_with(statements, "ecs:UpdateService"):
        assert statement["Resource"] != {"Ref": waking.service}


def test_map_workers_read_the_configured_input_buckets(
    default: Synthesis, variant: Synthesis
) -> None:
    names = tuple(variant.deployment.input_buckets)
    assert names == ("example-inputs", "example.logs")
    mappers, reducers = fleet(variant.raw, "map"), fleet(variant.raw, "reduce")

    def readable(statements: list[dict[str, Any]]) -> str:
        return repr([st["Resource"] for st in statements_with(statements, "s3:GetObject")])

    for name in names:
        assert f":s3:::{name}/*" in readable(mappers.policy_statements(variant.raw))
        assert f":s3:::{name}" not in readable(reducers.policy_statements(variant.raw))
        assert f":s3:::{name}" not in readable(
            fleet(default.raw, "map").policy_statements(default.raw)
        )
