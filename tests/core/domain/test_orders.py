"""Order lifecycle and its stock effects: every cancel and ship transition, both ways."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from marketsync.core.domain import inventory, orders
from marketsync.core.store import Store
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Order, ShipmentRow, StockMovement
from marketsync.core.types import (
    ChannelOrder,
    ChannelOrderItem,
    Fulfillment,
    OrderStatus,
    ShipmentConfirmation,
    ShipmentLine,
    TrackingInfo,
    PackageTracking,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


def channel_order(order_id="A-1", status=OrderStatus.NEW, *, sku="SKU-1", quantity=2,
                  shipped=0, fulfillment=Fulfillment.MFN, items=None) -> ChannelOrder:
    return ChannelOrder(
        channel_order_id=order_id, marketplace="DE", status=status, channel_status=status.value,
        fulfillment=fulfillment, purchased_at=T0, updated_at=T0,
        items=items or (ChannelOrderItem(channel_item_id="i1", channel_sku=sku,
                                         quantity=quantity, quantity_shipped=shipped),),
    )


def setup_world(session, stock=10) -> int:
    integration = ensure_integration(session, alias="amazon-de", channel="amazon",
                                     account="acme", marketplace="DE")
    inventory.ensure_product(session, "SKU-1")
    inventory.ensure_product(session, "SKU-2")
    inventory.set_on_hand(session, "SKU-1", stock)
    inventory.set_on_hand(session, "SKU-2", stock)
    return integration


def level(session, sku="SKU-1") -> tuple[int, int, int]:
    stock = inventory.stock_level(session, sku)
    return stock.on_hand, stock.reserved, stock.available


def order_id(session, channel_order_id="A-1") -> int:
    return session.execute(select(Order.id).where(
        Order.channel_order_id == channel_order_id)).scalar_one()


@pytest.fixture
def sqlite_store(tmp_path, _sqlite_template):
    """A SQLite store of this test's own, copied from the migrated template."""
    from marketsync.core.store import Store

    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield store
    store.close()


def run(store, fn, *args, **kwargs):
    return store.run_blocking(fn, *args, **kwargs)


# --- on both databases ---------------------------------------------------------------------


def test_new_order_reserves_and_reimport_is_a_no_op(store):
    """A new MFN order reserves its quantity once, however often it is imported."""
    def work(session):
        integration = setup_world(session)
        for _ in range(3):
            orders.apply_channel_orders(session, integration, [channel_order()])
        assert level(session) == (10, 2, 8)
        assert session.execute(select(func.count(Order.id))).scalar() == 1
        keys = session.execute(select(StockMovement.key).where(
            StockMovement.key.like("order-item:%"))).scalars().all()
        assert len(keys) == 1 and keys[0].endswith(":reserve")
    run(store, work)


def test_channel_cancel_of_new_order_restocks(store):
    """New → Canceled on the channel: imported as Canceled, the reservation is released."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        assert level(session) == (10, 0, 10)
        order = session.get(Order, order_id(session))
        assert order.status is OrderStatus.CANCELED and order.canceled_by == "channel"
    run(store, work)


def test_local_ship_then_cancel_does_not_restock(store):
    """Shipped locally → cancelled locally: the shipped units stay gone."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        oid = order_id(session)
        orders.ship_order(session, oid, carrier="DHL", tracking_number="T1")
        assert level(session) == (8, 0, 8)
        assert orders.cancel_locally(session, oid)
        assert level(session) == (8, 0, 8)
        assert session.get(Order, oid).canceled_by == "local"
    run(store, work)


# --- every transition (SQLite only, for speed) ------------------------------------------------


def test_local_cancel_of_new_restocks_and_channel_cannot_reopen(sqlite_store):
    """New → cancelled locally: restocked; the channel still saying New changes nothing."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        oid = order_id(session)
        assert orders.cancel_locally(session, oid)
        assert level(session) == (10, 0, 10)
        assert not orders.cancel_locally(session, oid)
        orders.apply_channel_orders(session, integration, [channel_order()])
        order = session.get(Order, oid)
        assert order.status is OrderStatus.CANCELED and order.canceled_by == "local"
        assert level(session) == (10, 0, 10)
    run(sqlite_store, work)


def test_channel_ship_consumes_reservation(sqlite_store):
    """New → Shipped on the channel: on hand and reserved both drop by the quantity."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.SHIPPED, shipped=2)])
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.SHIPPED, shipped=2)])
        assert level(session) == (8, 0, 8)
    run(sqlite_store, work)


def test_channel_cancel_after_ship_does_not_restock(sqlite_store):
    """Shipped → Canceled on the channel: nothing restocked."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.SHIPPED, shipped=2)])
        assert level(session) == (8, 0, 8)
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        assert level(session) == (8, 0, 8)
        assert session.get(Order, order_id(session)).status is OrderStatus.CANCELED
    run(sqlite_store, work)


def test_local_ship_survives_a_stale_new_import(sqlite_store):
    """Shipped locally, the channel not yet told: a re-import saying New does not undo it."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        oid = order_id(session)
        key = orders.ship_order(session, oid, carrier="DHL", tracking_number="T1")
        assert orders.ship_order(session, oid, carrier="DHL", tracking_number="T1") == key
        orders.apply_channel_orders(session, integration, [channel_order()])
        assert session.get(Order, oid).status is OrderStatus.SHIPPED
        assert level(session) == (8, 0, 8)
        assert session.execute(select(func.count(ShipmentRow.id))).scalar() == 1
    run(sqlite_store, work)


def test_partial_shipment_then_cancel_restocks_the_rest(sqlite_store):
    """PartiallyShipped → Canceled (either side): the unshipped rest is restocked."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order(quantity=3)])
        oid = order_id(session)
        orders.ship_order(session, oid, carrier="DHL", tracking_number="T1",
                          lines=[ShipmentLine(channel_item_id="i1", quantity=1)])
        assert session.get(Order, oid).status is OrderStatus.PARTIALLY_SHIPPED
        assert level(session) == (9, 2, 7)
        orders.apply_channel_orders(session, integration,
                                    [channel_order(quantity=3, status=OrderStatus.CANCELED)])
        assert level(session) == (9, 0, 9)
    run(sqlite_store, work)


def test_local_partial_then_rest_spells_out_lines(sqlite_store):
    """Shipping "the rest" records the remaining lines explicitly for the channel."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order(quantity=3)])
        oid = order_id(session)
        orders.ship_order(session, oid, carrier="DHL", tracking_number="T1",
                          lines=[ShipmentLine(channel_item_id="i1", quantity=1)])
        orders.ship_order(session, oid, carrier="DHL", tracking_number="T2")
        assert [p.shipment.lines for p in orders.pending_shipments(session)] == [
            (ShipmentLine(channel_item_id="i1", quantity=1),),
            (ShipmentLine(channel_item_id="i1", quantity=2),)]
        assert session.get(Order, oid).status is OrderStatus.SHIPPED
        assert level(session) == (7, 0, 7)
        with pytest.raises(orders.OrderStateError, match="nothing left"):
            orders.ship_order(session, oid, carrier="DHL", tracking_number="T3")
    run(sqlite_store, work)


def test_channel_partial_then_full_shipment(sqlite_store):
    """Partially shipped on the channel, then shipped: consumed step by step, once."""
    def work(session):
        integration = setup_world(session)
        partial = channel_order(quantity=3, status=OrderStatus.PARTIALLY_SHIPPED, shipped=1)
        orders.apply_channel_orders(session, integration, [channel_order(quantity=3)])
        orders.apply_channel_orders(session, integration, [partial, partial])
        assert level(session) == (9, 2, 7)
        orders.apply_channel_orders(session, integration, [channel_order(
            quantity=3, status=OrderStatus.SHIPPED, shipped=3)])
        assert level(session) == (7, 0, 7)
    run(sqlite_store, work)


def test_order_first_seen_canceled_has_no_effect(sqlite_store):
    """An order already cancelled when first imported never reserved: nothing to restock."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        assert level(session) == (10, 0, 10)
    run(sqlite_store, work)


def test_fba_orders_never_touch_local_stock(sqlite_store):
    """FBA orders: imported, shipped and cancelled without any stock movement."""
    def work(session):
        integration = setup_world(session)
        for status in (OrderStatus.NEW, OrderStatus.SHIPPED, OrderStatus.CANCELED):
            orders.apply_channel_orders(session, integration, [channel_order(
                status=status, shipped=2 if status is OrderStatus.SHIPPED else 0,
                fulfillment=Fulfillment.FBA)])
        assert level(session) == (10, 0, 10)
        with pytest.raises(orders.OrderStateError):
            orders.ship_order(session, order_id(session), carrier="X", tracking_number="1")
    run(sqlite_store, work)


def test_unmapped_item_waits_for_its_product(sqlite_store):
    """An item of an unknown SKU has no effect until a product with it appears (mapping);
    the open order was already missing from the channel's 5, so the shelf held 7."""
    from marketsync.core.domain import products
    from marketsync.core.types import ChannelListing

    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order(sku="NEW-SKU")])
        products.apply_channel_listings(session, integration, [
            ChannelListing(channel_sku="NEW-SKU", quantity=5)])
        assert level(session, "NEW-SKU") == (7, 2, 5)
    run(sqlite_store, work)


def test_cannot_ship_a_cancelled_order(sqlite_store):
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        with pytest.raises(orders.OrderStateError, match="cancelled"):
            orders.ship_order(session, order_id(session), carrier="DHL", tracking_number="T")
        with pytest.raises(orders.UnknownOrder):
            orders.cancel_locally(session, 999)
    run(sqlite_store, work)


def test_shipment_confirmation_lifecycle(sqlite_store):
    """A shipment is pending until confirmed; a transient failure keeps it pending, a final
    one marks it failed; confirmed shipments are not offered again."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order(), channel_order("A-2")])
        k1 = orders.ship_order(session, order_id(session), carrier="DHL", tracking_number="T1")
        k2 = orders.ship_order(session, order_id(session, "A-2"), carrier="UPS",
                               tracking_number="T2")
        pending = orders.pending_shipments(session, integration)
        assert [p.shipment.key for p in pending] == [k1, k2]
        assert pending[0].shipment.channel_order_id == "A-1"
        assert pending[0].shipment.lines == (ShipmentLine(channel_item_id="i1", quantity=2),)
        orders.mark_shipment_failed(session, k1, "timeout", final=False)
        assert not orders.mark_shipment_confirmed(session, k1, ShipmentConfirmation(
            key=k1, confirmed=False, message="try later"))
        assert [p.attempts for p in orders.pending_shipments(session)] == [2, 0]
        orders.mark_shipment_confirmed(session, k2, ShipmentConfirmation(key=k2, confirmed=True))
        assert [p.shipment.key for p in orders.pending_shipments(session)] == [k1]
        orders.mark_shipment_failed(session, k1, "refused", final=True)
        assert orders.pending_shipments(session) == []
    run(sqlite_store, work)


def test_mcf_releases_local_reservation_and_tracks(sqlite_store):
    """MCF: the local reservation goes back, tracking ships the order and closes it."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        oid = order_id(session)
        ref = orders.fulfill_mcf(session, oid, integration)
        assert orders.fulfill_mcf(session, oid, integration) == ref
        assert level(session) == (10, 0, 10)
        assert [f.fulfillment_order_id for f in orders.open_fulfillments(session, integration)] \
            == [ref]
        shipped = T0 + timedelta(days=1)
        orders.apply_tracking(session, integration, [TrackingInfo(
            fulfillment_order_id=ref, status="COMPLETE", packages=(PackageTracking(
                carrier="DHL", tracking_number="Z9", shipped_at=shipped,
                delivered_at=shipped + timedelta(days=2)),))])
        assert orders.open_fulfillments(session, integration) == []
        order = session.get(Order, oid)
        assert order.status is OrderStatus.SHIPPED
        assert order.pii_purge_after == shipped + timedelta(days=32)
        assert level(session) == (10, 0, 10)
    run(sqlite_store, work)


def test_manual_order_reserves_and_is_idempotent(sqlite_store):
    def work(session):
        setup_world(session)
        oid = orders.add_manual_order(session, "M-1", [("SKU-1", 3), ("SKU-2", 1)])
        assert orders.add_manual_order(session, "M-1", [("SKU-1", 3)]) == oid
        assert level(session) == (10, 3, 7)
        assert level(session, "SKU-2") == (10, 1, 9)
        with pytest.raises(inventory.UnknownSku, match="NOPE"):
            orders.add_manual_order(session, "M-2", [("NOPE", 1)])
    run(sqlite_store, work)


def test_usage_counts_fba_as_half(sqlite_store):
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [
            channel_order("A-1"), channel_order("A-2"),
            channel_order("F-1", fulfillment=Fulfillment.FBA)])
        assert orders.usage(session, "2026-11") == [("amazon-de", 2.5)]
        assert orders.usage(session, "2026-10") == []
        with pytest.raises(ValueError, match="YYYY-MM"):
            orders.usage(session, "11/2026")
    run(sqlite_store, work)


def test_local_cancel_then_channel_cancel_restocks_once(sqlite_store):
    """New → cancelled locally → cancelled on the channel too: restocked exactly once."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        orders.cancel_locally(session, order_id(session))
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        assert level(session) == (10, 0, 10)
        assert session.get(Order, order_id(session)).canceled_by == "local"
    run(sqlite_store, work)


def test_channel_cancel_then_local_cancel_is_a_no_op(sqlite_store):
    """Cancelled on the channel first, then locally: nothing more happens."""
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.CANCELED)])
        assert not orders.cancel_locally(session, order_id(session))
        assert level(session) == (10, 0, 10)
    run(sqlite_store, work)


def test_a_line_known_by_sku_only_takes_the_real_id_and_moves_stock_once(store):
    """An order stored from a source without item ids (Amazon's order report) and later
    read again with them: one line, its real id, its units reserved and shipped once."""
    def line(item_id, shipped=0):
        return (ChannelOrderItem(channel_item_id=item_id, channel_sku="SKU-1", quantity=2,
                                 quantity_shipped=shipped),
                ChannelOrderItem(channel_item_id=item_id.replace("SKU-1", "SKU-2"),
                                 channel_sku="SKU-2", quantity=1, quantity_shipped=shipped))

    def work(session):
        integration = setup_world(session)
        provisional = line("provisional:SKU-1")
        orders.apply_channel_orders(session, integration, [channel_order(items=provisional)])
        assert level(session) == (10, 2, 8) and level(session, "SKU-2") == (10, 1, 9)
        real = line("70001-SKU-1", shipped=2)
        orders.apply_channel_orders(session, integration,
                                    [channel_order(status=OrderStatus.SHIPPED, items=real)])
        # the report read again (a backfill run twice): still the same two lines
        orders.apply_channel_orders(session, integration, [channel_order(
            status=OrderStatus.SHIPPED, items=line("provisional:SKU-1", shipped=2))])
        order = orders.get_order(session, order_id(session))
        assert sorted(i.channel_item_id for i in order.items) == ["70001-SKU-1", "70001-SKU-2"]
        assert level(session) == (8, 0, 8) and level(session, "SKU-2") == (9, 0, 9)
    run(store, work)


def test_an_older_sighting_changes_nothing_and_a_newer_one_applies(store):
    """A report re-read (``sync --since``) while the search went on can show an order as
    it was before what is stored: its status must not win over the newer one."""
    def seen(status, hours, channel_status):
        return replace(channel_order(status=status, items=(ChannelOrderItem(
            channel_item_id="i1", channel_sku="SKU-1", quantity=2,
            quantity_shipped=2 if status is OrderStatus.SHIPPED else 0),)),
            updated_at=T0 + timedelta(hours=hours), channel_status=channel_status)

    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [seen(OrderStatus.NEW, 2, "UNSHIPPED")])
        assert level(session) == (10, 2, 8)
        orders.apply_channel_orders(session, integration,
                                    [seen(OrderStatus.CANCELED, 1, "CANCELLED")])
        order = orders.get_order(session, order_id(session))
        assert (order.status, order.channel_status) == (OrderStatus.NEW, "UNSHIPPED")
        assert order.updated_at_channel == T0 + timedelta(hours=2)
        assert level(session) == (10, 2, 8), "nothing released by the older sighting"
        orders.apply_channel_orders(session, integration,
                                    [seen(OrderStatus.SHIPPED, 3, "SHIPPED")])
        order = orders.get_order(session, order_id(session))
        assert (order.status, order.channel_status) == (OrderStatus.SHIPPED, "SHIPPED")
        assert level(session) == (8, 0, 8)
    run(store, work)
