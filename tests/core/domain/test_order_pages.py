"""A page of orders is applied in bulk and gives what its orders give one at a time: the
same order twice, a status that moves within the page, new and known orders mixed, a
record quarantined beside good ones, a page applied again after a crash."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from marketsync.core.domain import inventory, orders, products
from marketsync.core.runtime import jobs
from marketsync.core.store import Store, quarantine
from marketsync.core.store.cursors import load
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Order, StockMovement
from marketsync.core.types import (
    ChannelListing,
    ChannelOrder,
    ChannelOrderItem,
    Cursor,
    Fulfillment,
    OrderStatus,
    Page,
    RejectedRecord,
)

SNAPSHOT = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
BEFORE = SNAPSHOT - timedelta(hours=3)
AFTER = SNAPSHOT + timedelta(hours=3)


def order(order_id: str, status: OrderStatus = OrderStatus.NEW, *, sku: str = "MUG",
          quantity: int = 2, shipped: int = 0, at: datetime = AFTER,
          fulfillment: Fulfillment = Fulfillment.MFN) -> ChannelOrder:
    return ChannelOrder(
        channel_order_id=order_id, marketplace="US", status=status,
        channel_status=status.value, fulfillment=fulfillment, purchased_at=at,
        updated_at=at, items=(ChannelOrderItem(channel_item_id=f"{order_id}-1",
                                               channel_sku=sku, quantity=quantity,
                                               quantity_shipped=shipped),))


def shop(session, sku: str = "MUG", on_hand: int = 20) -> int:
    integration = ensure_integration(session, alias="amazon-us", channel="amazon",
                                     account="na", marketplace="US")
    inventory.ensure_product(session, sku)
    inventory.set_on_hand(session, sku, on_hand)
    return integration


def level(session, sku: str = "MUG") -> tuple[int, int]:
    stock = inventory.stock_level(session, sku)
    return stock.on_hand, stock.reserved


def effects(session, sku: str = "MUG") -> list[tuple[str, int, int]]:
    """The product's order effects as (key without the item id, on hand, reserved)."""
    product = inventory.product_by_sku(session, sku)
    rows = session.execute(
        select(StockMovement.key, StockMovement.delta_on_hand, StockMovement.delta_reserved)
        .where(StockMovement.product_id == product.id,
               StockMovement.key.like("order-item:%")).order_by(StockMovement.id)).all()
    return [(key.split(":", 2)[2], on_hand, reserved) for key, on_hand, reserved in rows]


def test_the_same_order_twice_in_a_page_reserves_once(store):
    """Two sightings of one new order in a page: one order, one reservation."""
    def work(session):
        integration = shop(session)
        result = orders.apply_channel_orders(session, integration, [order("A-1"), order("A-1")])
        assert (result.created, result.updated) == (1, 1)
        assert len(set(result.order_ids)) == 1
        assert session.execute(select(func.count(Order.id))).scalar() == 1
        assert level(session) == (20, 2)
        assert effects(session) == [("reserve", 0, 2)]
    store.run_blocking(work)


def test_an_order_that_moves_within_a_page_gets_each_step_once(store):
    """New, then partly shipped, then shipped, all in one page: reserved, then consumed
    step by step, as three pages would have done."""
    def work(session):
        integration = shop(session)
        result = orders.apply_channel_orders(session, integration, [
            order("A-1", quantity=3),
            order("A-1", OrderStatus.PARTIALLY_SHIPPED, quantity=3, shipped=1),
            order("A-1", OrderStatus.SHIPPED, quantity=3, shipped=3)])
        assert result.stock_changed == 3
        assert level(session) == (17, 0)
        assert effects(session) == [("reserve", 0, 3), ("ship:1", -1, -1), ("ship:3", -2, -2)]
    store.run_blocking(work)


def test_a_page_mixing_new_and_known_orders(store):
    """Known orders move on (shipped, cancelled, unchanged) while new ones reserve, and
    an FBA order beside them touches nothing."""
    def work(session):
        integration = shop(session)
        orders.apply_channel_orders(session, integration, [
            order("A-1"), order("A-2"), order("A-3")])
        assert level(session) == (20, 6)
        result = orders.apply_channel_orders(session, integration, [
            order("A-1", OrderStatus.SHIPPED, shipped=2), order("A-4", quantity=1),
            order("A-2", OrderStatus.CANCELED), order("A-3"),
            order("F-1", fulfillment=Fulfillment.FBA)])
        assert (result.created, result.updated, result.stock_changed) == (2, 3, 3)
        assert level(session) == (18, 3)  # A-1 gone, A-2 back, A-3 and A-4 held
    store.run_blocking(work)


def test_a_bulk_order_past_the_keyed_lookup_is_consumed_once(store):
    """An item of more units than are looked up by key is found by its item id."""
    units = orders.KEYED_LOOKUP_UNITS + 6

    def work(session):
        integration = shop(session, on_hand=500)
        orders.apply_channel_orders(session, integration, [order("B-1", quantity=units)])
        for _ in range(2):
            orders.apply_channel_orders(session, integration, [
                order("B-1", OrderStatus.SHIPPED, quantity=units, shipped=units)])
        assert level(session) == (500 - units, 0)
        assert [key for key, _, _ in effects(session)] == ["reserve", f"ship:{units}"]
    store.run_blocking(work)


def test_a_quarantined_record_beside_good_orders_in_one_page(store):
    """The record the plugin rejected goes to the quarantine, the good orders of its page
    are applied, the cursor moves; the page applied again (the crash came after the
    commit, before the cursor was believed) changes no stock."""
    page = Page(items=[order("A-1"), order("A-2", OrderStatus.SHIPPED, shipped=2)],
                next=Cursor(since=AFTER), done=False,
                rejected=[RejectedRecord(record_id="BAD-1", reason="OrderStatus 'Lost' "
                                         "is not an Amazon order status",
                                         raw={"AmazonOrderId": "BAD-1"})])

    def work(session):
        integration = shop(session)
        changed, new = jobs._commit_page(session, integration, "import_orders", page,
                                         jobs._apply_orders, None, AFTER)
        return integration, changed, [record.record_id for record in new]

    integration, changed, new = store.run_blocking(work)
    assert changed and new == ["BAD-1"]
    again = store.run_blocking(lambda session: jobs._commit_page(
        session, integration, "import_orders", page, jobs._apply_orders, None, AFTER))
    assert again == (False, [])

    def check(session):
        assert level(session) == (18, 2)
        assert [r.record_id for r in quarantine.list_records(session)] == ["BAD-1"]
        assert load(session, integration, "import_orders").since == AFTER
    store.run_blocking(check)


# --- the same as one order at a time, whatever the pages --------------------------------

_TEMPLATE: list[Path] = []


def _template() -> Path:
    if not _TEMPLATE:
        directory = Path(tempfile.mkdtemp(prefix="order-pages-"))
        with Store(f"sqlite:///{directory / 'db.sqlite'}") as template:
            template.upgrade()
        _TEMPLATE.append(directory / "db.sqlite")
    return _TEMPLATE[0]


STATUSES = st.sampled_from([OrderStatus.NEW, OrderStatus.PARTIALLY_SHIPPED,
                            OrderStatus.SHIPPED, OrderStatus.CANCELED])
SIGHTING = st.tuples(st.sampled_from(["A", "B", "C", "D"]), STATUSES,
                     st.sampled_from([BEFORE, AFTER]), st.integers(0, 3), st.booleans())


def _sighting(sku: str, name: str, status: OrderStatus, at: datetime, shipped: int,
              fba: bool) -> ChannelOrder:
    quantity = 3
    if status is OrderStatus.SHIPPED:
        shipped = quantity
    elif status is not OrderStatus.PARTIALLY_SHIPPED:
        shipped = 0
    # an order's purchase time never changes: it is part of its name here
    return order(f"{sku}-{name}-{at.hour}", status, sku=sku, quantity=quantity,
                 shipped=shipped, at=at, fulfillment=Fulfillment.FBA if fba else Fulfillment.MFN)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages=st.lists(st.lists(SIGHTING, min_size=1, max_size=6), min_size=1, max_size=5),
       listing_after=st.integers(0, 5))
def test_pages_give_what_their_orders_give_one_at_a_time(pages, listing_after):
    """Product BULK gets the pages as they came; product SINGLE the same sightings one
    call each. The listing (whose snapshot makes older orders part of the opening)
    arrives after ``listing_after`` pages. Stock and order effects come out the same."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "db.sqlite"
        shutil.copyfile(_template(), path)
        with Store(f"sqlite:///{path}") as store:
            def work(session):
                integration = ensure_integration(session, alias="amazon-us", channel="amazon",
                                                 account="na", marketplace="US")
                for number, page in enumerate(pages):
                    if number == listing_after:
                        _list_both(session, integration)
                    orders.apply_channel_orders(session, integration,
                                                [_sighting("BULK", *s) for s in page])
                    for sighting in page:
                        orders.apply_channel_orders(session, integration,
                                                    [_sighting("SINGLE", *sighting)])
                if listing_after >= len(pages):
                    _list_both(session, integration)
                assert level(session, "BULK") == level(session, "SINGLE")
                assert sorted(effects(session, "BULK")) == sorted(effects(session, "SINGLE"))
                for sku in ("BULK", "SINGLE"):
                    assert inventory.ledger_totals(
                        session, inventory.product_by_sku(session, sku).id) == level(session, sku)
            store.run_blocking(work)


def _list_both(session, integration: int) -> None:
    products.apply_channel_listings(session, integration, [
        ChannelListing(channel_sku="BULK", quantity=10),
        ChannelListing(channel_sku="SINGLE", quantity=10)], snapshot_at=SNAPSHOT)
