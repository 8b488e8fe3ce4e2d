"""The checks every synthesis must pass: cdk-nag (AwsSolutions) with no
unacknowledged finding and a reason for each acknowledgment, and cfn-lint
with nothing to report; and the real CDK CLI synthesizing offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import REGIONS, ManualArgs, lint

from infra.nag import unacknowledged_findings
from tests.infra.conftest import Synthesis
from worker.settings import PROJECT_ROOT

CDK_CLI = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
# Every acknowledged cdk-nag rule, by rule id (IAM5 findings by resource).
EXPECTED_ACKNOWLEDGMENTS = {
    "AwsSolutions-ECS2",
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-IAM5[Resource::<JobsBucket.Arn>/jobs/*/input/*]",
    "AwsSolutions-IAM5[Resource::<JobsBucket.Arn>/jobs/*/map/*]",
    "AwsSolutions-IAM5[Resource::<JobsBucket.Arn>/jobs/*/result/*]",
    "AwsSolutions-IAM5[Resource::<JobsBucket.Arn>/jobs/*/step-*/chunks.json]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:"
    "task/<Cluster>/*]",
}
INPUT_BUCKET_ACKNOWLEDGMENT = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{}/*]"


def acknowledgments(s: Synthesis) -> dict[str, str]:
    """Rule id -> reason, for every cdk-nag acknowledgment in the stack, with
    logical IDs reduced to their construct names so the test reads them."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: dict[str, str] = {}
    for construct in s.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != key:
                continue
            for qualified, reason in entry.data.items():
                rule = qualified.split("::", 1)[1]
                if rule.startswith("AwsSolutions-"):
                    found[_readable(rule)] = reason
    return found


def _readable(rule: str) -> str:
    rule = re.sub(r"<Storage(Jobs)[0-9A-F]{8}\.Arn>", r"<\1Bucket.Arn>", rule)
    return re.sub(r"<(Cluster)[0-9A-F]{8}>", r"<\1>", rule)


@pytest.mark.parametrize("fixture", ["default", "variant"])
def test_cdk_nag_leaves_nothing_unacknowledged(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    s: Synthesis = request.getfixturevalue(fixture)
    assert unacknowledged_findings(s.assembly_dir) == []


def test_cdk_nag_findings_are_reported(tmp_path: Path) -> None:
    """The check app.py relies on sees a finding nobody acknowledged, even
    where CDK itself only prints it (as under the CLI)."""
    app = App(context={"@aws-cdk/core:appMode": "process"}, outdir=str(tmp_path))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = Stack(app, "Careless")
    sqs.Queue(stack, "Plain", enforce_ssl=False)
    app.synth()
    findings = unacknowledged_findings(tmp_path)
    assert any(f.startswith("AwsSolutions-SQS4 at Careless/Plain") for f in findings)


def test_every_acknowledgment_is_expected_and_reasoned(
    default: Synthesis, variant: Synthesis
) -> None:
    assert set(acknowledgments(default)) == EXPECTED_ACKNOWLEDGMENTS
    inputs = {INPUT_BUCKET_ACKNOWLEDGMENT.format(b) for b in variant.deployment.input_buckets}
    assert set(acknowledgments(variant)) == EXPECTED_ACKNOWLEDGMENTS | inputs
    for reason in acknowledgments(variant).values():
        assert len(reason) >= 100, reason


def cfn_lint(template: Path) -> list[str]:
    """cfn-lint's errors and warnings (its default checks, as `make synth`
    runs it), for every region the stack might be deployed to."""
    return [str(m) for m in lint(template.read_text(), config=ManualArgs(regions=REGIONS))]


@pytest.mark.parametrize("fixture", ["default", "variant"])
def test_cfn_lint_reports_nothing(request: pytest.FixtureRequest, fixture: str) -> None:
    s: Synthesis = request.getfixturevalue(fixture)
    assert cfn_lint(s.template_path) == []


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CDK_DISABLE_CLI_TELEMETRY="true", CI="true")
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("PYTEST_VERSION", None)
    return env


def _cdk(*args: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    if not CDK_CLI.exists():
        pytest.fail("the CDK CLI is not installed: run `make test` (or `npm ci`) first")
    return subprocess.run(
        [str(CDK_CLI), "synth", "--quiet", "--no-notices", "--output", str(outdir), *args],
        cwd=PROJECT_ROOT,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cdk_cli_synthesizes_offline_without_credentials(tmp_path: Path) -> None:
    result = _cdk(outdir=tmp_path)
    assert result.returncode == 0, result.stderr
    template = tmp_path / "Drover.template.json"
    assert cfn_lint(template) == []
    assert unacknowledged_findings(tmp_path) == []
    # The image is staged, not built: the worker package and its Dockerfile,
    # and nothing the .dockerignore leaves out.
    (image,) = json.loads((tmp_path / "Drover.assets.json").read_text())["dockerImages"].values()
    asset = tmp_path / image["source"]["directory"]
    assert (asset / "worker" / "__main__.py").is_file()
    assert (asset / "worker" / "Dockerfile").is_file()
    assert sorted(p.name for p in asset.iterdir()) == [".dockerignore", "worker"]


def test_cdk_cli_rejects_invalid_context_naming_the_key(tmp_path: Path) -> None:
    result = _cdk("-c", "workerCpu=300", outdir=tmp_path)
    assert result.returncode != 0
    assert "'workerCpu'" in result.stderr
    assert "256, 512, 1024, 2048, 4096" in result.stderr
