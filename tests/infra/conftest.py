"""Synthesized Drover apps shared by the infra tests.

Synthesis takes seconds, so each configuration is synthesized once per
session, the way app.py does it (infra.build: context, stack, cdk-nag).
Under pytest CDK runs the app in memory, so an unacknowledged cdk-nag error
fails the synthesis itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.build import build
from infra.config import Deployment
from infra.stacks.drover_stack import DroverStack
from worker.settings import PROJECT_ROOT, load_context

# Everything a second configuration can change at once, in one synthesis.
VARIANT_CONTEXT = {
    "stackName": "DroverVariant",
    "useSpot": True,
    "alarmEmail": "ops@example.com",
    "inputBuckets": "example-inputs,example.logs",
    "maxWorkers": 20,
    "scaleInIdleSeconds": 1830,
    # A user's job modules, from outside the worker package.
    "jobModules": str(PROJECT_ROOT / "tests" / "user"),
}


@dataclass(frozen=True)
class Synthesis:
    deployment: Deployment
    stack: DroverStack
    template: Template
    raw: dict[str, Any]
    assembly_dir: Path
    template_path: Path


Synthesizer = Callable[[Mapping[str, Any]], Synthesis]


@pytest.fixture(scope="session")
def synthesize(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    def run(overrides: Mapping[str, Any]) -> Synthesis:
        outdir = tmp_path_factory.mktemp("cdk.out")
        app = App(context={**load_context(), **overrides}, outdir=str(outdir))
        stack = build(app)
        assembly = app.synth()
        artifact = assembly.get_stack_artifact(stack.artifact_id)
        raw = json.loads(Path(artifact.template_full_path).read_text())
        return Synthesis(
            deployment=stack.deployment,
            stack=stack,
            template=Template.from_json(raw),
            raw=raw,
            assembly_dir=Path(assembly.directory),
            template_path=Path(artifact.template_full_path),
        )

    return run


@pytest.fixture(scope="session")
def default(synthesize: Synthesizer) -> Synthesis:
    """The stack as cdk.json configures it."""
    return synthesize({})


@pytest.fixture(scope="session")
def variant(synthesize: Synthesizer) -> Synthesis:
    return synthesize(VARIANT_CONTEXT)
