"""A product's opening stock = the channel's quantity + what its open orders held then,
whichever of listing and orders arrives first, once, and never over a seller's count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from marketsync.core.domain import inventory, orders, products
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Listing, StockMovement
from marketsync.core.types import (
    ChannelListing,
    ChannelOrder,
    ChannelOrderItem,
    Fulfillment,
    OrderStatus,
)

SNAPSHOT = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
BEFORE = SNAPSHOT - timedelta(hours=5)
AFTER = SNAPSHOT + timedelta(minutes=5)


def integrations(session) -> tuple[int, int, int]:
    """US and CA share one NA account (one MFN quantity); DE is another region."""
    us = ensure_integration(session, alias="amazon-us", channel="amazon", account="na",
                            marketplace="US")
    ca = ensure_integration(session, alias="amazon-ca", channel="amazon", account="na",
                            marketplace="CA")
    de = ensure_integration(session, alias="amazon-de", channel="amazon", account="eu",
                            marketplace="DE")
    return us, ca, de


def order(order_id: str, quantity: int, *, at=BEFORE, status=OrderStatus.NEW, sku="MUG",
          shipped: int = 0) -> ChannelOrder:
    return ChannelOrder(
        channel_order_id=order_id, marketplace="US", status=status,
        channel_status=status.value, fulfillment=Fulfillment.MFN, purchased_at=at,
        updated_at=at, items=(ChannelOrderItem(channel_item_id=f"{order_id}-1",
                                               channel_sku=sku, quantity=quantity,
                                               quantity_shipped=shipped),))


def listing(session, integration: int, quantity: int, sku: str = "MUG") -> None:
    products.apply_channel_listings(session, integration, [
        ChannelListing(channel_sku=sku, quantity=quantity)], snapshot_at=SNAPSHOT)


def stock(session, sku: str = "MUG") -> tuple[int, int]:
    level = inventory.stock_level(session, sku)
    return level.on_hand, level.reserved


def pending(session) -> list[int]:
    return inventory.pending_push_integrations(session)


def test_listing_then_orders_and_orders_then_listing_agree(store):
    """Both orders of import give 10 on hand for a channel showing 7 with 3 units open,
    and neither asks for a push."""
    def listing_first(session):
        us, _, _ = integrations(session)
        listing(session, us, 7)
        orders.apply_channel_orders(session, us, [order("A", 2), order("B", 1)])
        assert stock(session) == (10, 3)
        assert pending(session) == []
        # imported again (the overlap window, a retry): nothing moves twice
        orders.apply_channel_orders(session, us, [order("A", 2), order("B", 1)])
        listing(session, us, 7)
        assert stock(session) == (10, 3)
    store.run_blocking(listing_first)


def test_orders_first(store):
    def work(session):
        us, _, _ = integrations(session)
        orders.apply_channel_orders(session, us, [order("A", 2), order("B", 1)])
        listing(session, us, 7)
        assert stock(session) == (10, 3)
        assert pending(session) == []
    store.run_blocking(work)


def test_later_sales_and_first_seen_cancelled_or_shipped(store):
    """A sale after the snapshot is a sale from the shelf; an order first seen cancelled
    held nothing; one first seen shipped left the channel and the shelf alike."""
    def work(session):
        us, _, _ = integrations(session)
        listing(session, us, 7)
        orders.apply_channel_orders(session, us, [
            order("LATER", 2, at=AFTER), order("GONE", 4, status=OrderStatus.CANCELED),
            order("SENT", 1, status=OrderStatus.SHIPPED, shipped=1)])
        assert stock(session) == (7, 2)
        level = inventory.stock_level(session, "MUG")
        assert level.available == 5  # Amazon took the 2 off its 7 too
    store.run_blocking(work)


def test_one_region_shares_its_quantity(store):
    """US and CA show one NA quantity, which left out the orders of both."""
    def work(session):
        us, ca, _ = integrations(session)
        orders.apply_channel_orders(session, us, [order("US-1", 2)])
        orders.apply_channel_orders(session, ca, [order("CA-1", 3)])
        listing(session, us, 5)
        listing(session, ca, 5)
        assert stock(session) == (10, 5)
        assert pending(session) == []
    store.run_blocking(work)


def test_regions_that_disagree_take_the_largest_figure(store):
    """NA shows 5 with 2 open, EU 4 with 1 open (7 vs 5 on the shelf): on hand is 7. The
    EU listing keeps its 4 (7 - 3); NA is to go down to 4, because the EU order takes
    its unit from the same shelf: that is the difference `stock plan` lists."""
    def run(session):
        us, _, de = integrations(session)
        orders.apply_channel_orders(session, us, [order("US-1", 2)])
        orders.apply_channel_orders(session, de, [order("DE-1", 1)])
        listing(session, us, 5)
        listing(session, de, 4)
        wanted = {row.integration_id: row.wanted_quantity
                  for row in session.execute(select(Listing)).scalars()}
        return stock(session), wanted[us], wanted[de], pending(session) == [us]
    assert store.run_blocking(run) == ((7, 3), 4, 4, True)


def test_regions_in_the_other_order(store):
    """The same figures, EU imported first: the same opening."""
    def run(session):
        us, _, de = integrations(session)
        orders.apply_channel_orders(session, us, [order("US-1", 2)])
        orders.apply_channel_orders(session, de, [order("DE-1", 1)])
        listing(session, de, 4)
        listing(session, us, 5)
        return stock(session)
    assert store.run_blocking(run) == (7, 3)


def test_a_count_wins_over_the_channels(store):
    """Stock counted before the listing arrives (or after): no opening from the channel."""
    def work(session):
        us, _, _ = integrations(session)
        inventory.ensure_product(session, "MUG")
        inventory.set_on_hand(session, "MUG", 4, note="stocktake")
        listing(session, us, 7)
        orders.apply_channel_orders(session, us, [order("A", 2)])
        assert stock(session) == (4, 2)
        reasons = set(session.execute(select(StockMovement.reason)).scalars())
        assert "opening" not in reasons
    store.run_blocking(work)


def test_short_is_flagged_not_negative(store):
    """A count below what open orders hold: available 0 and the shortfall shown."""
    def work(session):
        us, _, _ = integrations(session)
        listing(session, us, 7)
        orders.apply_channel_orders(session, us, [order("A", 5)])
        inventory.set_on_hand(session, "MUG", 3, note="stocktake")
        level = inventory.stock_level(session, "MUG")
        assert (level.available, level.short) == (0, 2)
        (mug,) = session.execute(select(Listing)).scalars()
        assert mug.wanted_quantity == 0
    store.run_blocking(work)
