"""The S3 layout: map outputs carry the tag the lifecycle rule expires."""

from __future__ import annotations

from submit.clients import Clients
from submit.resources import Resources
from worker import storage
from worker.names import MAP_OUTPUT_TAG_KEY, MAP_OUTPUT_TAG_VALUE


def test_map_outputs_are_tagged_for_expiry_and_results_are_not(
    clients: Clients, resources: Resources
) -> None:
    storage.put_map_output(clients.s3, resources.bucket, "j", 3, 1, {"w": 1})
    storage.put_json(clients.s3, resources.bucket, storage.result_key("j", 1), {"w": 1})
    key = storage.map_key("j", 3, 1)
    assert key == "jobs/j/map/000003/part-0001.json"
    assert storage.get_json(clients.s3, resources.bucket, key) == {"w": 1}
    tags = clients.s3.get_object_tagging(Bucket=resources.bucket, Key=key)["TagSet"]
    assert tags == [{"Key": MAP_OUTPUT_TAG_KEY, "Value": MAP_OUTPUT_TAG_VALUE}]
    result_tags = clients.s3.get_object_tagging(
        Bucket=resources.bucket, Key=storage.result_key("j", 1)
    )["TagSet"]
    assert result_tags == []
