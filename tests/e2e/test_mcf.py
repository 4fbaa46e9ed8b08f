"""Multi-Channel Fulfillment end to end: a local order shipped by Amazon from FBA stock."""

from __future__ import annotations

import trio
from sqlalchemy import select

from marketsync.core.domain import orders
from marketsync.core.store.models import FulfillmentOrder, Order
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
