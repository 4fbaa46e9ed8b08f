"""One searchOrders call serves every marketplace of an account (the job is account-scoped).

The core calls the hook once per account with its LIVE integrations; these tests play the
core's part (one cursor per account, orders grouped by marketplace) against the simulator.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import trio

from marketsync.core import clock
from marketsync.core.types import Cursor, Fulfillment
from marketsync.plugins.amazon import orders

from .conftest import START, calls

UK, DE = "A1F83G8C2ARO7P", "A1PA6795UKMFR9"


@pytest.fixture
def scenario_changes():
    return {"generator": {"orders_per_day": {"UK": 72, "DE": 72}, "fba_share": 0.3}}


async def drain(integrations, cursor):
    """Page until done, as the core's job does; returns orders by marketplace and cursor."""
    found: dict[str, list] = {i.marketplace: [] for i in integrations}
    while True:
        page = await orders.import_orders(integrations[0], cursor, integrations)
        for order in page.items:
            found[order.marketplace].append(order)  # KeyError: a marketplace not asked for
        cursor = page.next
        if page.done:
            return found, cursor


def placed(world, marketplace_id, moment, after=START):
    return {o.order_id for o in world.orders.values()
            if o.marketplace_id == marketplace_id and after < o.created
            and o.created + o.lag < moment}


async def run(integrations, cycles, cursor, seen):
    for _ in range(cycles):
        found, cursor = await drain(integrations, cursor)
        for marketplace, found_orders in found.items():
            seen.setdefault(marketplace, {}).update((o.channel_order_id, o) for o in found_orders)
        await trio.sleep(600)
    return cursor


async def test_one_call_serves_both_marketplaces(make_integration, world, autojump_clock):
    de, uk = make_integration("DE", history_days=1), make_integration("UK", history_days=1)
    seen: dict = {}
    cursor = await run([de, uk], 24, Cursor(), seen)
    searches = calls(world, "searchOrders", 200)
    assert len(searches) <= 24 + 4  # one call per cycle for both (not 48)
    assert len(calls(world, "searchOrders")) == len(searches)  # and never a 429
    moment = clock.now() - timedelta(minutes=15)
    assert placed(world, DE, moment) <= set(seen["DE"])
    assert placed(world, UK, moment) <= set(seen["UK"])
    assert placed(world, UK, moment) and placed(world, DE, moment)
    marks = cursor.state["watermarks"]
    assert set(marks) == {"DE", "UK"} and marks["DE"] == marks["UK"]
    assert cursor.since == datetime.fromisoformat(marks["DE"])


async def test_a_paused_marketplace_catches_up_from_its_own_watermark(make_integration, world,
                                                                      autojump_clock):
    """UK leaves for two hours (paused: the core no longer passes it): DE goes on alone,
    UK's watermark stays, and when UK is back its orders of those hours all arrive."""
    de, uk = make_integration("DE", history_days=1), make_integration("UK", history_days=1)
    seen: dict = {}
    cursor = await run([de, uk], 2, Cursor(), seen)
    uk_mark = cursor.state["watermarks"]["UK"]
    left = clock.now()
    cursor = await run([de], 12, cursor, seen)
    assert cursor.state["watermarks"]["UK"] == uk_mark  # not moved while away
    assert cursor.state["watermarks"]["DE"] > uk_mark
    assert cursor.since == datetime.fromisoformat(uk_mark)
    away = placed(world, UK, clock.now() - timedelta(minutes=15), after=left)
    assert away and not away & set(seen["UK"])
    before_back = len(calls(world, "searchOrders", 200))
    cursor = await run([de, uk], 1, cursor, seen)
    assert away <= set(seen["UK"])  # nothing lost
    assert len(calls(world, "searchOrders", 200)) - before_back <= 2  # one query for both
    assert cursor.state["watermarks"]["UK"] == cursor.state["watermarks"]["DE"]


async def test_a_marketplace_missing_for_one_page_keeps_its_watermark(
        make_integration, world, autojump_clock, monkeypatch):
    """UK is paused while the account pages through its history and back for the last
    page: the pages without UK dropped UK's orders, so UK's watermark must not move (found
    by the crash test: 36 UK orders lost), and the next query reads them again."""
    monkeypatch.setattr(orders, "PAGE_SIZE", 10)
    de, uk = make_integration("DE", history_days=1), make_integration("UK", history_days=1)
    seen: dict[str, set] = {"DE": set(), "UK": set()}

    async def page_for(members, cursor):
        page = await orders.import_orders(members[0], cursor, members)
        for order in page.items:
            seen[order.marketplace].add(order.channel_order_id)
        return page

    page = await page_for([de, uk], Cursor())
    page = await page_for([de], page.next)  # UK paused for this page
    assert not page.done
    cursor = page.next
    while True:
        page = await page_for([de, uk], cursor)
        cursor = page.next
        if page.done:
            break
    assert set(cursor.state["watermarks"]) == {"DE"}  # UK has a gap: no watermark yet
    history = placed(world, UK, clock.now() - timedelta(minutes=5),
                     after=clock.now() - timedelta(hours=23))
    assert history - seen["UK"], "the page without UK held UK orders"
    found, cursor = await drain([de, uk], cursor)
    assert history <= seen["UK"] | {o.channel_order_id for o in found["UK"]}
    assert set(cursor.state["watermarks"]) == {"DE", "UK"}


async def test_a_marketplace_added_later_gets_its_history(make_integration, world,
                                                          autojump_clock):
    de = make_integration("DE", history_days=1)
    seen: dict = {}
    cursor = await run([de], 3, Cursor(), seen)
    uk = make_integration("UK", history_days=1)
    await run([de, uk], 1, cursor, seen)
    day = placed(world, UK, clock.now() - timedelta(minutes=15),
                 after=clock.now() - timedelta(hours=23))
    assert day and day <= set(seen["UK"])


async def test_different_order_filters_are_not_mixed(make_integration, world, autojump_clock):
    """DE wants FBA orders, UK merchant ones: one call asks for both kinds and each
    integration gets only what it asked for."""
    de, uk = make_integration("DE", orders="FBA"), make_integration("UK", orders="MFN")
    seen: dict = {}
    await run([de, uk], 6, Cursor(), seen)
    assert seen["DE"] and seen["UK"]
    assert all(o.fulfillment is Fulfillment.FBA for o in seen["DE"].values())
    assert all(o.fulfillment is Fulfillment.MFN for o in seen["UK"].values())
    fba_de = {o.order_id for o in world.orders.values()
              if o.marketplace_id == DE and o.fulfilled_by == "AMAZON"
              and START < o.created and o.created + o.lag < clock.now() - timedelta(minutes=15)}
    assert fba_de and fba_de <= set(seen["DE"])
    # one query per cycle for both (plus the first run's history pages), not one each
    assert len(calls(world, "searchOrders", 200)) <= 6 + 4
