"""Multi-Channel Fulfillment end to end: a local order shipped by Amazon from FBA stock."""

from __future__ import annotations

import httpx
import trio
from sqlalchemy import select

from marketsync.core import clock
from marketsync.core.domain import orders
from marketsync.core.store.models import FulfillmentOrder, Order, ShipmentRow
from marketsync.core.types import Address, OrderStatus

from .conftest import EU


async def test_a_local_order_fulfilled_by_mcf_is_created_once_and_tracked(make_daemon, world, e2e_clock):
    """fulfill-mcf records the wish; the fetch_tracking job creates the MCF order on Amazon
    (once, also when asked again), then brings back carrier and tracking as it ships."""
    daemon = make_daemon(integrations=[("amazon-uk", "eu", "UK")])
    address = Address(name="Ada Buyer", line1="1 Example Street", city="London",
                      postal_code="SW1A 1AA", country_code="GB")
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # products and FBA stock imported

        def enter(session):
            order_id = orders.add_manual_order(session, "PHONE-1", [("SPORK-FBA", 2)],
                                               address=address, cipher=daemon.cipher)
            return orders.fulfill_mcf(session, order_id, daemon.integration_ids["amazon-uk"])

        reference = await daemon.store.run(enter)
        daemon.trigger("amazon-uk", "fetch_tracking")
        await trio.sleep(60)
        at_amazon = [o for o in world.catalog.fulfillment_orders(EU)
                     if o["sellerFulfillmentOrderId"] == reference] \
            if hasattr(world.catalog, "fulfillment_orders") else None
        sent = await daemon.store.read(lambda s: s.execute(select(FulfillmentOrder.status).where(
            FulfillmentOrder.seller_fulfillment_order_id == reference)).scalar_one())
        for _ in range(16):  # Amazon picks, packs and ships within hours
            await trio.sleep(1800)
            daemon.trigger("amazon-uk", "fetch_tracking")

        def outcome(session):
            row = session.execute(select(FulfillmentOrder).where(
                FulfillmentOrder.seller_fulfillment_order_id == reference)).scalar_one()
            order = session.get(Order, row.order_id)
            return row.status, row.carrier, row.tracking_numbers, row.open, order.status

        status, carrier, tracking, still_open, order_status = await daemon.store.read(outcome)
        created = [c for c in world.calls if c.operation == "createFulfillmentOrder"]
        nursery.cancel_scope.cancel()
    assert sent not in (None, "Rejected")  # sent; its status is Amazon's from then on
    assert len([c for c in created if c.status == 200]) == 1
    assert carrier and tracking, (status, carrier, tracking)
    assert order_status is OrderStatus.SHIPPED and not still_open
    if at_amazon is not None:
        assert len(at_amazon) == 1


async def test_an_amazon_merchant_order_shipped_by_mcf_is_confirmed_with_its_tracking(
        make_daemon, world, e2e_clock):
    """An order from a channel (here Amazon UK, merchant-fulfilled) sent to MCF: the MCF
    request carries the contact settings (overwrite), and once Amazon ships it, the
    tracking comes back to the order and is confirmed on the channel it came from."""
    from marketsync.plugins.amazon.sandbox import create_app

    daemon = make_daemon(integrations=[("amazon-uk", "eu", "UK")],
                         extra="    contact:\n      email: shop@example.com\n"
                               "      phone: '+44 20 0000 0000'\n      mode: overwrite\n")
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                base_url="http://sandbox.local")
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # products and FBA stock imported
        placed = await control.post("/_sandbox/orders", json={
            "marketplace": "UK", "items": {"SPORK-FBA": 1}, "fulfilledBy": "MERCHANT"})
        assert placed.status_code == 201, placed.text
        channel_id = placed.json()["orderId"]
        stored = None
        for _ in range(12):  # the order import brings it in, with its address once paid
            await trio.sleep(900)
            stored = await daemon.store.read(lambda s: s.execute(select(Order.id).where(
                Order.channel_order_id == channel_id,
                Order.ship_to_address.is_not(None))).scalar())
            if stored is not None:
                break
        assert stored is not None
        reference = await daemon.store.run(orders.fulfill_mcf, stored,
                                           daemon.integration_ids["amazon-uk"])
        for _ in range(16):
            daemon.trigger("amazon-uk", "fetch_tracking")
            await trio.sleep(1800)

        def outcome(session):
            row = session.execute(select(FulfillmentOrder).where(
                FulfillmentOrder.seller_fulfillment_order_id == reference)).scalar_one()
            shipment = session.execute(select(ShipmentRow).where(
                ShipmentRow.order_id == stored)).scalar_one_or_none()
            return row.tracking_numbers, shipment and (shipment.tracking_number,
                                                       shipment.confirm_state)

        tracking, shipment = await daemon.store.read(outcome)
        nursery.cancel_scope.cancel()
    created = [c for c in world.calls if c.operation == "createFulfillmentOrder" and c.status == 200]
    assert len(created) == 1
    [mcf] = [o for o in world.catalog.fulfillment.orders.values() if o.order_id == reference]
    assert mcf.request["notificationEmails"] == ["shop@example.com"]  # contact: overwrite
    assert mcf.request["destinationAddress"]["phone"] == "+44 20 0000 0000"
    assert tracking and shipment == (tracking[0], "confirmed"), (tracking, shipment)
    confirmed = [c for c in world.confirmations if c["orderId"] == channel_id and c["accepted"]]
    assert len(confirmed) == 1
    assert confirmed[0]["request"]["packageDetail"]["trackingNumber"] == tracking[0]
    assert world.orders[channel_id].status_at(clock.now()) == "SHIPPED"
