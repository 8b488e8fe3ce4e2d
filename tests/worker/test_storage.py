"""The S3 layout: map outputs carry the tag the lifecycle rule expires."""

from __future__ import annotations

from submit.clients import Clients
from submit.resources import Resources
from worker import records, storage
from worker.names import MAP_OUTPUT_TAG_KEY, MAP_OUTPUT_TAG_VALUE


def test_map_outputs_are_tagged_for_expiry_and_results_are_not(
    clients: Clients, resources: Resources
) -> None:
    run = records.to_bytes([("w", 1)])
    storage.put_map_output(clients.s3, resources.bucket, "j", 3, 1, run)
    storage.put_bytes(clients.s3, resources.bucket, storage.result_key("j", 1), run)
    key = storage.map_key("j", 3, 1)
    assert key == "jobs/j/map/000003/part-0001.jsonl"
    blocks = storage.stream_blocks(clients.s3, resources.bucket, key, 2)
    assert list(records.decode(blocks)) == [["w", 1]]
    tags = clients.s3.get_object_tagging(Bucket=resources.bucket, Key=key)["TagSet"]
    assert tags == [{"Key": MAP_OUTPUT_TAG_KEY, "Value": MAP_OUTPUT_TAG_VALUE}]
    result_tags = clients.s3.get_object_tagging(
        Bucket=resources.bucket, Key=storage.result_key("j", 1)
    )["TagSet"]
    assert result_tags == []


def test_a_later_step_keeps_its_files_apart(clients: Clients, resources: Resources) -> None:
    assert storage.map_key("j", 3, 1, step=2) == "jobs/j/step-2/map/000003/part-0001.jsonl"
    assert storage.result_key("j", 0, step=1) == "jobs/j/step-1/result/part-0000.jsonl"
    storage.put_bytes(clients.s3, resources.bucket, storage.result_key("j", 1, step=1), b"[]\n")
    assert storage.result_sizes(clients.s3, resources.bucket, "j", 1) == {1: 3}
    assert storage.result_sizes(clients.s3, resources.bucket, "j", 0) == {}
