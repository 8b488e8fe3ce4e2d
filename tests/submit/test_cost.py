"""A job's estimated cost: its workers' recorded seconds at the task size,
plus public IPv4 and requests, at the list prices of worker.prices."""

from __future__ import annotations

import pytest

from submit.cli.render import cost_lines, usd
from submit.cost import LEAVES_OUT, estimate, work_of
from worker import prices
from worker.ledger import ItemKey, ItemRecord, ItemState, Work

ITEMS = [
    ItemRecord(ItemKey.chunk(0), ItemState.DONE, map_seconds=1800.0),
    ItemRecord(ItemKey.chunk(1), ItemState.DONE, map_seconds=1200.0),
    # A failed chunk's attempts record no seconds: not counted.
    ItemRecord(ItemKey.chunk(2), ItemState.FAILED, attempts=5, last_error="TimeLimit: x"),
    ItemRecord(ItemKey.partition(0), ItemState.DONE, reduce_seconds=600.0),
]


def test_the_work_of_items_is_the_done_items_seconds() -> None:
    assert work_of(ITEMS) == Work(map_s=3000.0, chunks=2, reduce_s=600.0, partitions=1)


def test_an_hour_of_a_default_task_costs_its_list_price() -> None:
    cost = estimate(work_of(ITEMS), cpu_units=1024, memory_mib=2048, local=False)
    hour = prices.FARGATE_VCPU_HOUR_USD + 2 * prices.FARGATE_GB_HOUR_USD
    assert cost.task_s == 3600
    assert cost.compute_usd == pytest.approx(hour)
    assert cost.spot_compute_usd == pytest.approx(hour * (1 - prices.FARGATE_SPOT_DISCOUNT))
    assert cost.ipv4_usd == pytest.approx(prices.PUBLIC_IPV4_HOUR_USD)
    # Requests: a few cents' hundredths for a few messages.
    assert 0 < cost.requests_usd < 0.001
    assert cost.fargate_usd == pytest.approx(hour + prices.PUBLIC_IPV4_HOUR_USD + cost.requests_usd)
    # Twice the task size, twice the compute.
    bigger = estimate(work_of(ITEMS), cpu_units=2048, memory_mib=4096, local=False)
    assert bigger.compute_usd == pytest.approx(2 * cost.compute_usd)


def test_the_status_lines_say_where_the_estimate_comes_from_and_what_it_leaves_out() -> None:
    deployed = cost_lines(estimate(work_of(ITEMS), cpu_units=1024, memory_mib=2048, local=False))
    assert deployed[0].startswith("cost       ~$0.0")
    assert "on Fargate Spot (3600.0 task-s at 1 vCPU and 2 GB" in deployed[0]
    assert deployed[1].strip() == f"an estimate at the deployed task size; it {LEAVES_OUT}"
    local = cost_lines(estimate(work_of(ITEMS), cpu_units=1024, memory_mib=2048, local=True))
    assert local[0].startswith("cost       on AWS ~$")
    assert "what the same job would cost on AWS" in local[1]


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(12.3456, "$12.35"), (0.0543, "$0.0543"), (0.0000215, "$0.0000215"), (0, "$0.00")],
)
def test_amounts_show_the_digits_they_need(amount: float, shown: str) -> None:
    assert usd(amount) == shown
