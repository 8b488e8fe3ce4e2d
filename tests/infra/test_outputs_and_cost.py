"""What a deployed user relies on: the outputs `submit --stack` reads, and a
stack that costs nothing while no job runs."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synthesis
from tests.infra.lookup import fleet, props, resources
from worker import names


def test_outputs_are_exactly_what_submit_reads(default: Synthesis, variant: Synthesis) -> None:
    for s in (default, variant):
        assert sorted(s.raw["Outputs"]) == sorted(names.ALL_OUTPUTS)


def test_outputs_point_at_the_right_resources(default: Synthesis) -> None:
    mappers, reducers = fleet(default.raw, "map"), fleet(default.raw, "reduce")
    (cluster,) = resources(default.raw, "AWS::ECS::Cluster")
    (table,) = resources(default.raw, "AWS::DynamoDB::Table")
    (bucket,) = [
        k
        for k, v in resources(default.raw, "AWS::S3::Bucket").items()
        if "LoggingConfiguration" in v["Properties"]
    ]
    expected = {
        names.OUTPUT_BUCKET: {"Ref": bucket},
        names.OUTPUT_TABLE: {"Ref": table},
        names.OUTPUT_MAP_QUEUE_URL: {"Ref": mappers.queue},
        names.OUTPUT_MAP_DLQ_URL: {"Ref": mappers.dead_letter_queue},
        names.OUTPUT_REDUCE_QUEUE_URL: {"Ref": reducers.queue},
        names.OUTPUT_REDUCE_DLQ_URL: {"Ref": reducers.dead_letter_queue},
        names.OUTPUT_CLUSTER: {"Ref": cluster},
        names.OUTPUT_MAP_SERVICE: {"Fn::GetAtt": [mappers.service, "Name"]},
        names.OUTPUT_REDUCE_SERVICE: {"Fn::GetAtt": [reducers.service, "Name"]},
        # The maxima a wake-up is bounded by, as deployed.
        names.OUTPUT_MAP_MAX_TASKS: str(props(default.raw, mappers.scalable_target)["MaxCapacity"]),
        names.OUTPUT_REDUCE_MAX_TASKS: str(
            props(default.raw, reducers.scalable_target)["MaxCapacity"]
        ),
        # No bucket besides its own by default.
        names.OUTPUT_INPUT_BUCKETS: "[]",
        # The task size a job's cost is priced at.
        names.OUTPUT_TASK_CPU: props(default.raw, mappers.task_definition)["Cpu"],
        names.OUTPUT_TASK_MEMORY_MIB: props(default.raw, mappers.task_definition)["Memory"],
    }
    assert {k: v["Value"] for k, v in default.raw["Outputs"].items()} == expected


def test_the_input_buckets_output_lists_what_map_workers_may_read(variant: Synthesis) -> None:
    listed = json.loads(variant.raw["Outputs"][names.OUTPUT_INPUT_BUCKETS]["Value"])
    assert listed == list(variant.deployment.input_buckets) == ["example-inputs", "example.logs"]


def test_stack_name_defaults_to_what_submit_looks_for(
    default: Synthesis, variant: Synthesis
) -> None:
    assert default.stack.stack_name == names.DEFAULT_STACK_NAME
    assert variant.stack.stack_name == "DroverVariant"


@pytest.mark.parametrize("fixture", ["default", "variant"])
def test_idle_costs_nothing(request: pytest.FixtureRequest, fixture: str) -> None:
    s: Synthesis = request.getfixturevalue(fixture)
    t = s.template
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::EIP", 0)
    t.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 0)
    t.resource_count_is("AWS::ElasticLoadBalancing::LoadBalancer", 0)
    t.resource_count_is("AWS::EC2::Instance", 0)
    t.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 0)
    t.resource_count_is("AWS::KMS::Key", 0)
    # One function only, run by CloudFormation alone, at deploy time: CDK's
    # handler that removes the default security group's rules.
    (function,) = resources(s.raw, "AWS::Lambda::Function").values()
    assert "default security group" in function["Properties"]["Description"]
    (handler,) = resources(s.raw, "Custom::VpcRestrictDefaultSG").values()
    assert handler["Properties"]["ServiceToken"]["Fn::GetAtt"][0] in resources(
        s.raw, "AWS::Lambda::Function"
    )
    endpoints = resources(s.raw, "AWS::EC2::VPCEndpoint").values()
    assert sorted(e["Properties"]["VpcEndpointType"] for e in endpoints) == ["Gateway", "Gateway"]
    targets = resources(s.raw, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert len(targets) == len(resources(s.raw, "AWS::ECS::Service")) == 2
    assert all(target["Properties"]["MinCapacity"] == 0 for target in targets)
    for service in resources(s.raw, "AWS::ECS::Service").values():
        # No fixed count: a deploy neither starts idle tasks nor stops busy ones.
        assert "DesiredCount" not in service["Properties"]
    for table in resources(s.raw, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"


def test_network_is_public_subnets_with_gateway_endpoints(default: Synthesis) -> None:
    subnets = resources(default.raw, "AWS::EC2::Subnet").values()
    assert subnets
    routes = resources(default.raw, "AWS::EC2::Route").values()
    # Every route table sends the internet through the gateway, none via NAT.
    assert routes and all("GatewayId" in r["Properties"] for r in routes)
    services = sorted(
        repr(e["Properties"]["ServiceName"])
        for e in resources(default.raw, "AWS::EC2::VPCEndpoint").values()
    )
    assert "dynamodb" in services[0] and ".s3" in services[1]
    default.template.has_resource_properties(
        "AWS::EC2::FlowLog", {"ResourceType": "VPC", "TrafficType": "ALL"}
    )
    for f in ("map", "reduce"):
        network = props(default.raw, fleet(default.raw, f).service)["NetworkConfiguration"]
        assert set(s["Ref"] for s in network["AwsvpcConfiguration"]["Subnets"]) == set(
            resources(default.raw, "AWS::EC2::Subnet")
        )
