"""Each fleet's task role gets what its worker calls, on specific ARNs."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesis
from tests.infra.lookup import as_list, fleet, refs, resources
from worker import names

# Actions that do not support resource-level permissions.
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken"}


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]


def all_statements(s: Synthesis) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(s.raw, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


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
        consumed = {r for st in statements_with(statements, "sqs:ReceiveMessage") for r in refs(st)}
        sent = {r for st in statements_with(statements, "sqs:SendMessage") for r in refs(st)}
        assert consumed == {f.queue}
        assert sent == sends_to


def test_workers_read_and_write_the_bucket_and_table(default: Synthesis) -> None:
    (bucket,) = [
        k
        for k, v in resources(default.raw, "AWS::S3::Bucket").items()
        if "LoggingConfiguration" in v["Properties"]
    ]
    (table,) = resources(default.raw, "AWS::DynamoDB::Table")
    for command in ("map", "reduce"):
        statements = fleet(default.raw, command).policy_statements(default.raw)
        for action in ("s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:ListBucket"):
            (statement,) = statements_with(statements, action)
            assert set(refs(statement["Resource"])) == {bucket}
        (table_statement,) = statements_with(statements, "dynamodb:UpdateItem")
        assert set(as_list(table_statement["Action"])) >= {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:ConditionCheckItem",
        }
        resources_ = as_list(table_statement["Resource"])
        assert {"Fn::GetAtt": [table, "Arn"]} in resources_
        index = {
            "Fn::Join": ["", [{"Fn::GetAtt": [table, "Arn"]}, f"/index/{names.JOBS_BY_TIME_INDEX}"]]
        }
        assert index in resources_
        (protection,) = statements_with(statements, "ecs:UpdateTaskProtection")
        assert "ecs:GetTaskProtection" in as_list(protection["Action"])


def test_only_map_workers_wake_the_reduce_service(default: Synthesis) -> None:
    mappers, reducers = fleet(default.raw, "map"), fleet(default.raw, "reduce")
    (wake,) = statements_with(mappers.policy_statements(default.raw), "ecs:UpdateService")
    assert set(as_list(wake["Action"])) == {"ecs:UpdateService", "ecs:DescribeServices"}
    assert wake["Resource"] == {"Ref": reducers.service}
    assert not statements_with(reducers.policy_statements(default.raw), "ecs:UpdateService")


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
