"""Orders that Amazon publishes late (data lag beyond two minutes) are caught by the overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from marketsync.core import clock
from marketsync.core.types import Cursor
from marketsync.plugins.amazon import orders

from .conftest import START


@pytest.fixture
def scenario_changes():
    return {"data_lag_seconds": [300, 540], "generator": {
        "orders_per_day": {"DE": 96}, "fba_share": 0.3}}


async def run_every_ten_minutes(integration, hours: int) -> set[str]:
    seen: set[str] = set()
    cursor = Cursor()
    for _ in range(hours * 6):
        while True:
            page = await orders.import_orders(integration, cursor)
            seen.update(o.channel_order_id for o in page.items)
            cursor = page.next
            if page.done:
                break
        await trio.sleep(600)
    return seen


def placed_before(world, moment) -> set[str]:
    return {o.order_id for o in world.orders.values()
            if o.marketplace_id == "A1PA6795UKMFR9" and START < o.created
            and o.created + o.lag < moment}


async def test_late_orders_are_caught_by_the_overlap(make_integration, world, autojump_clock):
    seen = await run_every_ten_minutes(make_integration("DE"), hours=4)
    placed = placed_before(world, clock.now() - timedelta(minutes=15))
    assert len(placed) >= 4
    assert placed <= seen


async def test_without_the_overlap_late_orders_would_be_lost(make_integration, world,
                                                             autojump_clock, monkeypatch):
    """The control: the same run with no overlap misses orders (so the test above can fail)."""
    monkeypatch.setattr(orders, "OVERLAP", timedelta(0))
    seen = await run_every_ten_minutes(make_integration("DE"), hours=4)
    placed = placed_before(world, clock.now() - timedelta(minutes=15))
    assert placed - seen
