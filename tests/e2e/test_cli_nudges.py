"""What the command line changes reaches Amazon now (issue 11): price and quantity of a
listing in one message, and a shipment confirmed within seconds of ``orders ship``,
through the running daemon's ``POST /local-change`` that every CLI action sends."""

from __future__ import annotations

from decimal import Decimal

import httpx
import trio
from sqlalchemy import select

from marketsync.core import clock
from marketsync.core.domain import inventory, orders, products
from marketsync.core.store.models import Order
from marketsync.core.types import Fulfillment, OrderStatus
from marketsync.core.web.server import create_web_app

from .conftest import EU

DE = "A1PA6795UKMFR9"


def web_client(daemon) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_web_app(daemon), client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8470")


def patches_of(world, sku: str, since: int) -> list:
    return [c for c in world.calls[since:]
            if c.operation == "patchListingsItem" and c.path.endswith(f"/{sku}")]


async def test_price_and_quantity_go_in_one_message(make_daemon, world, e2e_clock):
    """A price and a count set together: one patch carrying both, within seconds, and
    nothing left for the price job."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # first imports done
        before = len(world.calls)
        await daemon.store.run(inventory.set_on_hand, "MUG-1", 60, note="delivery")
        de = await daemon.store.read(products.integration_id, "amazon-de")
        await daemon.store.run(products.set_price, "MUG-1", Decimal("9.45"), de)
        level = await daemon.store.read(inventory.stock_level, "MUG-1")
        async with web_client(daemon) as client:
            answer = await client.post("/local-change", params={"jobs": "push_stock,push_prices"})
        await trio.sleep(10)
        view = world.catalog.view(EU)["MUG-1"]
        patches = patches_of(world, "MUG-1", before)
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert answer.status_code == 202
    assert len(patches) == 1, patches
    assert view["quantity"] == level.available
    assert view["marketplaces"][DE]["price"] == "9.45"


async def test_a_shipment_is_confirmed_within_a_minute(make_daemon, world, e2e_clock):
    """`orders ship` then the nudge: Amazon has the confirmation well inside 60 s (the
    scheduled run alone took 94 s once)."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)
        order_id, channel_order_id = await daemon.store.read(lambda session: session.execute(
            select(Order.id, Order.channel_order_id).where(
                Order.fulfillment == Fulfillment.MFN, Order.status == OrderStatus.NEW)
            .order_by(Order.id).limit(1)).one())
        shipped_at = clock.monotonic()
        await daemon.store.run(orders.ship_order, order_id, carrier="DHL",
                               tracking_number="JJD000111")
        async with web_client(daemon) as client:
            answer = await client.post("/local-change", params={"jobs": "confirm_shipment"})
            refused = await client.post("/local-change", params={"jobs": "drop_tables"})
        with trio.fail_after(60):
            while not any(c["orderId"] == channel_order_id for c in world.confirmations):
                await trio.sleep(1)
        took = clock.monotonic() - shipped_at
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert answer.status_code == 202 and took < 60
    assert refused.status_code == 400 and "not drop_tables" in refused.text

