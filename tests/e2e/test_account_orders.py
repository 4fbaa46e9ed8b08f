"""Orders imported once per regional account: the daemon, the Amazon plugin, the simulator."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import trio
from sqlalchemy import select

from marketsync.core import clock
from marketsync.core.store import cursors
from marketsync.core.store.models import IntegrationRow, Order
from marketsync.core.types import Cursor
from marketsync.plugins.amazon import orders as amazon_orders
from marketsync.plugins.amazon.marketplaces import MARKETPLACES

from .conftest import EU, NA, SCENARIO


@pytest.fixture
def scenario_changes():
    """A busier shop than the other e2e tests': enough new orders in an hour or two."""
    catalog = copy.deepcopy(SCENARIO["catalog"])
    for item in catalog:
        for key in ("mfn_quantity", "fba_quantity"):
            if key in item:
                item[key] = 100_000
    return {"catalog": catalog,
            "generator": {"orders_per_day": {"US": 240, "UK": 100, "DE": 140, "AU": 20},
                          "fba_share": 0.3}}


def _stored(session):
    return session.execute(select(Order.channel_order_id, Order.marketplace,
                                  IntegrationRow.marketplace)
                           .join(IntegrationRow, IntegrationRow.id == Order.integration_id)).all()


def searches(world, seller, status=None):
    return [c for c in world.calls if c.operation == "searchOrders" and c.seller_id == seller
            and (status is None or c.status == status)]


def visible(world, codes, before):
    ids = {MARKETPLACES[c].id for c in codes}
    return {o.order_id for o in world.orders.values()
            if o.marketplace_id in ids and o.created + o.lag <= before}


async def test_one_search_per_account_serves_uk_and_de(make_daemon, world, e2e_clock):
    """An hour: the EU account (UK and DE) polls searchOrders as often as the US account
    (US alone), about every 199 s, never throttled; each order lands on the integration
    of its marketplace; and 95 % of new orders are stored ≤ 5 min after Amazon shows them
    (the two-minute search rule plus one poll; on the old 10-minute schedule ≈ 17 min)."""
    daemon = make_daemon()
    first_seen: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        began = trio.current_time()
        start = clock.now()
        for _ in range(3600 // 15):  # looked at every 15 s
            await trio.sleep(15)
            for order_id, _, _ in await daemon.store.read(_stored):
                first_seen.setdefault(order_id, trio.current_time() - began)
        rows = await daemon.store.read(_stored)
        moment = clock.now() - timedelta(minutes=6)
        nursery.cancel_scope.cancel()
    eu, na = searches(world, EU), searches(world, NA)
    # 3,600 s / (199 s ± 10 %) ≈ 17..20 runs, plus a history page or two
    assert 16 <= len(eu) <= 24 and abs(len(eu) - len(na)) <= 3
    assert all(c.status == 200 for c in eu + na)  # no 429
    assert all(order_marketplace == integration_marketplace
               for _, order_marketplace, integration_marketplace in rows)
    stored = {order_id for order_id, _, _ in rows}
    assert visible(world, {"UK", "DE"}, moment) <= stored
    assert {m for _, m, _ in rows} >= {"UK", "DE", "US"}
    delays = sorted(first_seen[o.order_id] - ((o.created + o.lag) - start).total_seconds()
                    for o in world.orders.values()
                    if o.created >= start and o.order_id in first_seen)
    assert len(delays) >= 10
    assert delays[int(len(delays) * 0.95)] <= 5 * 60 + 15  # give or take one look


async def test_an_upgrade_keeps_each_integrations_watermark(make_daemon, world, e2e_clock):
    """A seller upgrading from per-integration cursors (DE at an hour ago, UK at two):
    the first account search starts at UK's watermark less the overlap, not 30 days back,
    and nothing changed since either watermark is missed."""
    daemon = make_daemon()
    await daemon.prepare()
    now = clock.now()
    de_mark, uk_mark = now - timedelta(hours=1), now - timedelta(hours=2)
    ids = daemon.integration_ids

    def legacy(session):
        cursors.save(session, ids["amazon-de"], "import_orders", Cursor(since=de_mark))
        cursors.save(session, ids["amazon-uk"], "import_orders", Cursor(since=uk_mark))

    await daemon.store.run(legacy)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(900)
        rows = await daemon.store.read(_stored)
        cursor = await daemon.store.read(cursors.load_account, "eu", "import_orders")
        end = clock.now()
        moment = end - timedelta(minutes=6)
        nursery.cancel_scope.cancel()
    window_start = uk_mark - amazon_orders.OVERLAP
    eu_orders = {o.order_id: o for o in world.orders.values()
                 if o.marketplace_id in {MARKETPLACES["UK"].id, MARKETPLACES["DE"].id}}
    stored_eu = {order_id for order_id, m, _ in rows if m in ("UK", "DE")}
    old = {i for i, o in eu_orders.items()  # not changed since before the window
           if o.visible(now) and o.last_updated_at(o.visible(end)) < window_start}
    assert old, "the scenario has EU history older than the watermarks"
    assert not stored_eu & old  # not re-imported
    changed = {i for i, o in eu_orders.items()
               if o.visible(moment) and o.last_updated_at(o.visible(moment)) >= uk_mark}
    assert changed <= stored_eu  # nothing missed
    assert set(cursor.state["watermarks"]) == {"UK", "DE"}
    assert cursor.since > now
