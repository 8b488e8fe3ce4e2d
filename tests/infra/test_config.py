"""Invalid context is refused before any construct exists, with an error
that names the key and the values it accepts."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from infra.build import build
from infra.config import deployment_from_context
from worker.names import DEFAULT_STACK_NAME
from worker.settings import Settings, SettingsError, load_context


@pytest.mark.parametrize(
    ("context", "key", "allowed"),
    [
        ({"workerCpu": 300}, "workerCpu", "256, 512, 1024, 2048, 4096"),
        ({"maxWorkers": "abc"}, "maxWorkers", "whole number"),
        ({"maxWorkers": 0}, "maxWorkers", "from 1 to 1000"),
        ({"workerCpu": 1024, "workerMemoryMiB": 1024}, "workerMemoryMiB", "2048..8192"),
        ({"useSpot": "maybe"}, "useSpot", "true or false"),
        ({"logRetentionDays": 10}, "logRetentionDays", "one of 1, 3, 5"),
        ({"alarmEmail": "not an address"}, "alarmEmail", "an e-mail address"),
        ({"maxTaskSeconds": 5}, "maxTaskSeconds", "from 10 to 43140"),
        ({"maxTaskSeconds": 50_000}, "maxTaskSeconds", "12 hours"),
        ({"inputExpiryDays": 3}, "inputExpiryDays", "from mapOutputExpiryDays (7)"),
        ({"stackName": "1-drover"}, "stackName", "a letter followed by"),
        ({"inputBuckets": "My_Bucket"}, "inputBuckets", "bucket names"),
        ({"inputBuckets": {"a": 1}}, "inputBuckets", "list of bucket names"),
    ],
)
def test_invalid_context_names_the_key_and_allowed_values(
    context: dict[str, Any], key: str, allowed: str
) -> None:
    with pytest.raises(SettingsError) as error:
        deployment_from_context(context)
    assert f"{key!r}" in str(error.value)
    assert allowed in str(error.value)


def test_invalid_context_stops_the_app_before_any_construct() -> None:
    app = App(context={**load_context(), "workerCpu": 300})
    with pytest.raises(SettingsError, match="workerCpu"):
        build(app)
    assert app.node.children == []


def test_cdk_json_context_gives_the_default_settings() -> None:
    deployment = deployment_from_context(load_context())
    assert deployment.settings == Settings()
    assert deployment.stack_name == DEFAULT_STACK_NAME
    assert deployment.input_buckets == ()


def test_cli_spellings_are_accepted() -> None:
    """`cdk deploy -c key=value` passes every value as a string."""
    deployment = deployment_from_context(
        {
            "maxWorkers": "12",
            "useSpot": "true",
            "alarmEmail": "ops@example.com",
            "inputBuckets": "a-bucket, b.bucket,a-bucket",
            "stackName": "Drover-Test",
        }
    )
    assert deployment.settings.max_workers == 12
    assert deployment.settings.use_spot is True
    assert deployment.settings.alarm_email == "ops@example.com"
    assert deployment.input_buckets == ("a-bucket", "b.bucket")
    assert deployment.stack_name == "Drover-Test"
