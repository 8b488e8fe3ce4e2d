"""The IAM actions the worker's code can need, read from the code itself.

The worker image holds the `worker` package only. Every name in it that is
a method of a boto3 client of the services it uses (a call such as
`s3.get_object(...)`, or a reference such as `sqs.delete_message_batch`
handed to a helper, or a paginator's operation name) is an operation the
worker may call; botocore's own service models give each method's
operation. An operation is authorized as the IAM action of the same name,
except where AWS authorizes it as other actions:

- SQS batch calls are authorized entry by entry, as the single call
  (SendMessageBatch needs sqs:SendMessage);
- S3's ListObjectsV2 is authorized as s3:ListBucket;
- DynamoDB's TransactWriteItems is authorized per action it holds: the
  code's transaction items (dicts keyed Put, Update, Delete, ConditionCheck)
  name them;
- an S3 PutObject that sets tags (a `Tagging` argument) also needs
  s3:PutObjectTagging;
- the ECS agent's task-protection endpoint is called over HTTP, not through
  boto3: a PUT there is ecs:UpdateTaskProtection, a GET
  ecs:GetTaskProtection.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import boto3

from worker.settings import PROJECT_ROOT

WORKER = PROJECT_ROOT / "worker"
SERVICES = ("s3", "sqs", "dynamodb", "ecs")
# Client methods that are no operation.
NOT_OPERATIONS = {"close", "get_paginator", "get_waiter", "can_paginate", "generate_presigned_url"}
BATCHES = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
RENAMED = {"s3:ListObjectsV2": "s3:ListBucket"}
TRANSACTION_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
TASK_PROTECTION_PATH = "/task-protection/v1/state"
TASK_PROTECTION = {"PUT": "ecs:UpdateTaskProtection", "GET": "ecs:GetTaskProtection"}


@cache
def operations() -> dict[str, set[str]]:
    """Client method name -> the `service:Operation` names it may be."""
    out: dict[str, set[str]] = {}
    for service in SERVICES:
        mapping = boto3.client(service, region_name="us-east-1").meta.method_to_api_mapping
        for method, operation in mapping.items():
            out.setdefault(method, set()).add(f"{service}:{operation}")
    return out


def trees(root: Path = WORKER) -> Iterator[ast.Module]:
    for path in sorted(root.rglob("*.py")):
        yield ast.parse(path.read_text(), filename=str(path))


def called_operations(root: Path = WORKER) -> set[str]:
    """Every `service:Operation` the code under `root` names."""
    found: set[str] = set()
    known = operations()
    for tree in trees(root):
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and node.attr not in NOT_OPERATIONS:
                name = node.attr
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                name = str(node.args[0].value)
            if name in known:
                found |= known[name]
    return found


def _dict_keys(root: Path) -> set[str]:
    return {
        key.value
        for tree in trees(root)
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def _agent_methods(root: Path) -> set[str]:
    """HTTP methods of the calls whose URL names the task-protection path."""
    methods = set()
    for tree in trees(root):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            texts = [
                c.value
                for arg in node.args
                for c in ast.walk(arg)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
            if not any(TASK_PROTECTION_PATH in t for t in texts):
                continue
            for keyword in node.keywords:
                if keyword.arg == "method" and isinstance(keyword.value, ast.Constant):
                    methods.add(str(keyword.value.value))
    return methods


def used_actions(root: Path = WORKER) -> set[str]:
    """The IAM actions the code under `root` may need."""
    actions: set[str] = set()
    keys = _dict_keys(root)
    for operation in called_operations(root):
        if operation in BATCHES:
            actions.add(BATCHES[operation])
        elif operation in RENAMED:
            actions.add(RENAMED[operation])
        elif operation == "dynamodb:TransactWriteItems":
            actions |= {action for key, action in TRANSACTION_ITEMS.items() if key in keys}
        else:
            actions.add(operation)
            if operation == "s3:PutObject" and "Tagging" in keys:
                actions.add("s3:PutObjectTagging")
    actions |= {TASK_PROTECTION[m] for m in _agent_methods(root) if m in TASK_PROTECTION}
    return actions
