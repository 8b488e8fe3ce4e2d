"""The app as `cdk synth` and the tests build it: the stack named and
configured by context, checked by cdk-nag's AwsSolutions pack."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import deployment_from_node
from infra.stacks.drover_stack import DroverStack


def build(app: App) -> DroverStack:
    """Add the Drover stack to `app`; raises `worker.settings.SettingsError`
    on invalid context, before any construct is made."""
    deployment = deployment_from_node(app.node)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return DroverStack(app, deployment.stack_name, deployment=deployment)
