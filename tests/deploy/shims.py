"""Everything the deploy tests change or add to run Drover's synthesized
template on moto, each with the reason, in one place. Nothing else differs
from a `cdk deploy`: the template is the one `cdk synth` writes, and the
workers run from their task definitions as ECS would start them.

1. The CDK bootstrap version. The template checks the bootstrap stack's
   version through the SSM parameter `cdk bootstrap` writes: it is seeded.
2. Resources moto cannot create, dropped from the template:
   - the CloudWatch dashboard: its alarm widgets name alarms that moto
     records but never creates;
   - the custom resource that empties the VPC's default security group, its
     Lambda handler and the handler's role: moto would run the function in
     Docker, from code in the bootstrap's asset bucket. Drover's tasks use
     a security group of their own.
   moto skips others by itself (alarms, scaling, queue and bucket policies)
   and creates the services on no capacity: no task runs, so the tests
   start the workers.
3. Task roles. moto drops `TaskRoleArn` from task definitions, so each
   fleet's role is found through the template's task definition and the
   stack's resources; on Fargate the ECS agent hands a task its role's
   credentials, here sts:AssumeRole of that role does.
4. How moto authorizes, where it differs from AWS (moto's IAM checks are
   on: requests signed with a role's credentials are checked against its
   policies). A policy `MotoAuthorization` on each task role adds, derived
   from the role's own statements:
   - its DynamoDB and ECS actions on "*": moto checks those services'
     requests against the resource "*", never a table's or service's ARN;
   - sqs:GetQueueUrl on "*": moto checks it against "*" (the queue is a
     parameter it does not read for the check);
   - the names moto gives batch calls and transactions, where AWS checks
     each entry as the single call: sqs:SendMessageBatch,
     sqs:DeleteMessageBatch and sqs:ChangeMessageVisibilityBatch on the
     queues the role may SendMessage, DeleteMessage or
     ChangeMessageVisibility; dynamodb:TransactWriteItems where it may
     PutItem or UpdateItem.
   S3 requests, and SQS requests on a queue, moto checks against the
   object's and queue's ARNs as AWS does: no shim touches those, and the
   deploy tests rely on them (a worker may read and write only its keys).
"""

from __future__ import annotations

import copy
import json
from typing import Any

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"
DASHBOARD = "AWS::CloudWatch::Dashboard"
RESTRICT_DEFAULT_SG = "Custom::VpcRestrictDefaultSG"
AUTHORIZATION_POLICY = "MotoAuthorization"

MOTO_BATCH_NAMES = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}
CHECKED_AGAINST_STAR = ("dynamodb:", "ecs:", "sqs:GetQueueUrl")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref(value: Any) -> str:
    return value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]


def template_for_moto(template: dict[str, Any]) -> dict[str, Any]:
    """The template without what moto cannot create (shim 2)."""
    out = copy.deepcopy(template)
    found = out["Resources"]
    dropped = {k for k, v in found.items() if v["Type"] == DASHBOARD}
    for key, resource in found.items():
        if resource["Type"] == RESTRICT_DEFAULT_SG:
            handler = _ref(resource["Properties"]["ServiceToken"])
            dropped |= {key, handler, _ref(found[handler]["Properties"]["Role"])}
    for key in dropped:
        del found[key]
    for resource in found.values():
        if "DependsOn" in resource:
            resource["DependsOn"] = [d for d in _as_list(resource["DependsOn"]) if d not in dropped]
    return out


def task_roles(template: dict[str, Any], physical: dict[str, str]) -> dict[str, str]:
    """Role name of each fleet's task role, by the container's command
    (shim 3); `physical` maps the stack's logical IDs to physical ones."""
    roles = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        props = resource["Properties"]
        (container,) = props["ContainerDefinitions"]
        (command,) = container["Command"]
        roles[command] = physical[_ref(props["TaskRoleArn"])]
    return roles


def moto_authorization(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The policy document of shim 4, from a role's own statements."""
    extra: list[dict[str, Any]] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement["Action"])
        star = [a for a in actions if a.startswith(CHECKED_AGAINST_STAR)]
        if {"dynamodb:PutItem", "dynamodb:UpdateItem"} & set(actions):
            star.append("dynamodb:TransactWriteItems")
        if star:
            extra.append({"Effect": "Allow", "Action": star, "Resource": "*"})
        batches = [MOTO_BATCH_NAMES[a] for a in actions if a in MOTO_BATCH_NAMES]
        if batches:
            extra.append({"Effect": "Allow", "Action": batches, "Resource": statement["Resource"]})
    return {"Version": "2012-10-17", "Statement": extra}


def add_moto_authorization(iam: Any, role: str) -> None:
    statements = [
        statement
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for statement in _as_list(
            _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])[
                "Statement"
            ]
        )
    ]
    iam.put_role_policy(
        RoleName=role,
        PolicyName=AUTHORIZATION_POLICY,
        PolicyDocument=json.dumps(moto_authorization(statements)),
    )


def _document(value: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return document
