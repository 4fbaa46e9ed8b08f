"""One searchOrders call serves every marketplace of an account that is due."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from marketsync.core import clock
from marketsync.core.types import Cursor
from marketsync.plugins.amazon import orders

from .conftest import START, calls

UK, DE = "A1F83G8C2ARO7P", "A1PA6795UKMFR9"


@pytest.fixture
def scenario_changes():
    return {"generator": {"orders_per_day": {"UK": 72, "DE": 72}, "fba_share": 0.3}}


async def drain(integration, cursor):
    found = []
    while True:
        page = await orders.import_orders(integration, cursor)
        found += [o.channel_order_id for o in page.items]
        assert all(o.marketplace == integration.marketplace for o in page.items)
        cursor = page.next
        if page.done:
            return found, cursor


def placed(world, marketplace_id, moment):
    return {o.order_id for o in world.orders.values()
            if o.marketplace_id == marketplace_id and START < o.created
            and o.created + o.lag < moment}


async def run(integrations, cycles, *, together: bool):
    seen = {i.alias: set() for i in integrations}
    cursors = {i.alias: Cursor() for i in integrations}

    async def one(integration):
        found, cursors[integration.alias] = await drain(integration, cursors[integration.alias])
        seen[integration.alias].update(found)

    for _ in range(cycles):
        if together:
            async with trio.open_nursery() as nursery:
                for integration in integrations:
                    nursery.start_soon(one, integration)
        else:
            for integration in integrations:
                await one(integration)
        await trio.sleep(600)
    return seen


async def test_one_call_serves_both_marketplaces_in_turn(make_integration, world,
                                                         autojump_clock):
    de, uk = make_integration("DE", history_days=1), make_integration("UK", history_days=1)
    seen = await run([de, uk], 24, together=False)
    searches = len(calls(world, "searchOrders", 200))
    assert searches <= 24 + 4  # after both ran once, one call per cycle (not 48)
    moment = clock.now() - timedelta(minutes=15)
    assert placed(world, DE, moment) <= seen["amazon-de"]
    assert placed(world, UK, moment) <= seen["amazon-uk"]
    assert placed(world, UK, moment) and placed(world, DE, moment)


async def test_due_at_once_the_second_waits_for_the_first(make_integration, world,
                                                          autojump_clock):
    de, uk = make_integration("DE", history_days=1), make_integration("UK", history_days=1)
    seen = await run([de, uk], 24, together=True)
    assert len(calls(world, "searchOrders", 200)) <= 24 + 4
    moment = clock.now() - timedelta(minutes=15)
    assert placed(world, DE, moment) <= seen["amazon-de"]
    assert placed(world, UK, moment) <= seen["amazon-uk"]


async def test_a_stopped_marketplace_is_left_out_after_an_hour(make_integration, world,
                                                               autojump_clock):
    de, uk = make_integration("DE"), make_integration("UK")
    await run([de, uk], 1, together=False)
    sweep = de.account_runtime[orders._SWEEP]
    await run([de], 12, together=False)  # UK stopped
    assert "amazon-uk" in sweep.stash  # found for it while it was recent...
    last = sweep.stash["amazon-uk"].before
    await run([de], 3, together=False)
    assert sweep.stash["amazon-uk"].before == last  # ...no longer searched for
    assert clock.now() - last > orders.COMPANION_MAX_LAG


async def test_different_order_filters_are_not_mixed(make_integration, world, autojump_clock):
    de, uk = make_integration("DE", orders="FBA"), make_integration("UK", orders="MFN")
    await run([de, uk], 6, together=False)
    assert len(calls(world, "searchOrders", 200)) >= 12  # each asks for itself
