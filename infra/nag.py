"""cdk-nag v3 findings: acknowledging them with a reason, naming the ones
whose resource is a token, and reading what a synthesis left unacknowledged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

# The file CDK writes next to the templates when validation plugins run.
VALIDATION_REPORT = "validation-report.json"
NAG_PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Record that a finding on `scope` (and its children) was reviewed."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def wildcard_resource(scope: IConstruct, resource: str) -> str:
    """The IAM5 finding id for a wildcard resource ARN that contains tokens,
    spelled the way cdk-nag flattens it (`<Logical.Attr>` for GetAtt)."""
    return f"{NAG_PACK}-IAM5[Resource::{_flatten(Stack.of(scope).resolve(resource))}]"


def _flatten(node: Any) -> str:
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_flatten(item) for item in items)
    if "Fn::Sub" in node:
        return _flatten(node["Fn::Sub"])
    if "Fn::GetAtt" in node:
        logical_id, attribute = node["Fn::GetAtt"]
        return f"<{_flatten(logical_id)}.{_flatten(attribute)}>"
    if "Ref" in node:
        return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def unacknowledged_findings(assembly_dir: str | Path) -> list[str]:
    """`rule at construct path` for every cdk-nag finding nobody acknowledged,
    warnings included, from the report of a finished synthesis."""
    report = json.loads((Path(assembly_dir) / VALIDATION_REPORT).read_text())
    return [
        f"{violation['ruleName']} at {construct.get('constructPath', '?')}"
        for plugin in report.get("pluginReports", [])
        if plugin.get("pluginName") == NAG_PACK
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]
