"""The daemon end to end: configuration → plugins → scheduler → simulator → store."""

from __future__ import annotations

from datetime import timedelta

import trio
from sqlalchemy import func, select

from marketsync.core import clock

from marketsync.core.domain import inventory
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store.models import Listing, Order, Product

from .conftest import EU, NA


def visible_orders(world, marketplaces: set[str]) -> set[str]:
    """Order ids the simulator shows now (created, and past the data lag)."""
    ids = {m.id: m.code for m in _marketplaces(world)}
    now = clock.now()
    return {o.order_id for o in world.orders.values()
            if ids.get(o.marketplace_id) in marketplaces and o.created + o.lag <= now}


def _marketplaces(world):
    from marketsync.plugins.amazon.marketplaces import MARKETPLACES

    return MARKETPLACES.values()


async def test_a_simulated_hour_imports_orders_listings_and_fba_stock(make_daemon, world, e2e_clock):
    """Every integration goes LIVE; after an hour the store holds every visible order once,
    the listings of every marketplace, and Amazon's FBA quantity."""
    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        assert {a: r.state for a, r in daemon.runners.items()} == {
            a: IntegrationState.LIVE for a in ("amazon-us", "amazon-de", "amazon-uk", "amazon-au")}
        await trio.sleep(3600)
        expected = visible_orders(world, {"US", "DE", "UK", "AU"})

        def stored(session):
            ids = set(session.execute(select(Order.channel_order_id)).scalars())
            total = session.execute(select(func.count()).select_from(Order)).scalar()
            listings = session.execute(select(func.count()).select_from(Listing)).scalar()
            fba = session.execute(select(Listing.channel_quantity).where(
                Listing.channel_sku == "SPORK-FBA")).scalars().all()
            return ids, total, listings, fba

        ids, total, listings, fba = await daemon.store.read(stored)
        fba_at_amazon = world.catalog.view(EU)["SPORK-FBA"]["fbaQuantity"]
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert len(expected) > 10
    assert expected <= ids and total == len(ids)  # all there, none twice
    assert listings >= 8  # MUG-1 and KETTLE-1 on four marketplaces, plus FBA
    assert fba and fba_at_amazon in fba  # Amazon's own figure (it drifts with FBA orders)


async def test_a_local_stock_change_reaches_every_channel(make_daemon, world, e2e_clock):
    """Set on hand locally: within a minute every MFN listing of the product on every
    account carries on-hand minus reserved, and the channel's acknowledgement is stored."""
    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # first imports done

        await daemon.store.run(inventory.set_on_hand, "MUG-1", 500, note="stocktake")
        daemon.stock_changed()
        changed_at = clock.monotonic()
        level = await daemon.store.read(inventory.stock_level, "MUG-1")
        await trio.sleep(60)

        def acknowledged(session):
            return dict(session.execute(
                select(Listing.integration_id, Listing.acknowledged_quantity)
                .join(Product, Product.id == Listing.product_id)
                .where(Product.sku == "MUG-1", Listing.channel_sku == "MUG-1")).all())

        acks = await daemon.store.read(acknowledged)
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    available = max(500 - level.reserved, 0)
    assert world.catalog.view(EU)["MUG-1"]["quantity"] == available
    assert world.catalog.view(NA)["MUG-1"]["quantity"] == available
    assert set(acks.values()) == {available} and len(acks) == 4
