#!/usr/bin/env python3
"""CDK entry point (see cdk.json): `npx cdk synth`, `npx cdk deploy`.

The only place that reads the CDK context and the process environment. It
fails the synthesis on invalid context and on any cdk-nag finding that no
acknowledgment covers, warnings included.
"""

from __future__ import annotations

import sys

from aws_cdk import App

from infra.build import build
from infra.nag import unacknowledged_findings
from worker.settings import SettingsError


def main() -> int:
    app = App()
    try:
        build(app)
    except SettingsError as e:
        print(f"drover: invalid cdk context: {e}", file=sys.stderr)
        return 2
    assembly = app.synth()
    findings = unacknowledged_findings(assembly.directory)
    if findings:
        print("drover: cdk-nag findings without an acknowledgment:", file=sys.stderr)
        for finding in findings:
            print(f"  {finding}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
