"""An account's first order import from the all-orders report (issue 14), end to end:
the daemon, the Amazon plugin and the simulator, on SQLite and PostgreSQL.

The report path must give the same order book as the searchOrders path on one world
(statuses, lines, amounts and the same stock effects), survive a crash in the middle,
and quarantine the orders whose rows break the schema while the others go in.
"""

from __future__ import annotations

import copy
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketsync.core import clock
from marketsync.core.cli import oneshot
from marketsync.core.domain import inventory, pii
from marketsync.core.store import Store, quarantine
from marketsync.core.store.models import Order, OrderItem, StockMovement
from marketsync.core.types import Fulfillment, OrderStatus
from marketsync.plugins.amazon import order_report
from marketsync.plugins.amazon.marketplaces import MARKETPLACES

from ..conftest import PgSchema
from .conftest import NA, SCENARIO

US = [("amazon-us", "na", "US")]
SKUS = ("MUG-1", "KETTLE-1")


@pytest.fixture
def scenario_changes():
    """Three busy days of US history in which the seller shipped its own orders (a shop
    connecting in the middle of business), with cancellations, and stock for all of it."""
    catalog = copy.deepcopy(SCENARIO["catalog"])
    for item in catalog:
        for key in ("mfn_quantity", "fba_quantity"):
            if key in item:
                item[key] = 10**6
    return {"catalog": catalog, "history_days": 3,
            "generator": {"orders_per_day": {"US": 150}, "fba_share": 0.3,
                          "quantity_per_item": [1, 3], "cancel_by_buyer": 0.05,
                          "cancel_by_amazon": 0.02, "mfn_ship_hours": [2, 30]}}


@pytest.fixture
def second_url(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'second.sqlite'}"
        return
    schema = PgSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture(autouse=True)
def _no_document_left():
    order_report._DOCUMENTS.clear()  # noqa: SLF001 - each test is a fresh process
    order_report._HEADERS.clear()  # noqa: SLF001
    yield


def stocked(url: str) -> None:
    """The seller's products with a shelf count, so that orders move stock."""
    with Store(url) as store:
        store.upgrade()

        def work(session):
            for sku in SKUS:
                inventory.ensure_product(session, sku)
                inventory.set_on_hand(session, sku, 100_000)
        store.run_blocking(work)


async def sync(daemon) -> str:
    message = await oneshot.sync(daemon, "amazon-us", "import_orders", stream=io.StringIO())
    assert " done: " in message, message
    return message


def book(session) -> dict[str, tuple]:
    """Every order as the seller sees it, without the ids a source invents."""
    found = {}
    for order in session.execute(select(Order)).scalars():
        lines = sorted((i.channel_sku, i.quantity, i.quantity_shipped, i.unit_price, i.tax)
                       for i in order.items)
        effects = session.execute(
            select(OrderItem.channel_sku, func.sum(StockMovement.delta_on_hand),
                   func.sum(StockMovement.delta_reserved))
            .join(StockMovement, StockMovement.order_item_id == OrderItem.id)
            .where(OrderItem.order_id == order.id).group_by(OrderItem.channel_sku)).all()
        found[order.channel_order_id] = (
            order.status, order.channel_status, order.fulfillment, order.marketplace,
            order.purchased_at.replace(tzinfo=None), order.currency,
            None if order.total is None else Decimal(order.total), tuple(lines),
            tuple(sorted((sku, int(on_hand), int(reserved)) for sku, on_hand, reserved in effects)))
    return found


def holding(session) -> dict[str, bool]:
    return {o.channel_order_id: any(getattr(o, c) is not None for c in pii.PII_COLUMNS)
            for o in session.execute(select(Order)).scalars()}


def calls(world, since: int, operation: str, status: int | None = None) -> int:
    return sum(1 for c in world.calls[since:] if c.operation == operation
               and c.seller_id == NA and (status is None or c.status == status))


async def test_the_report_path_gives_the_same_orders_as_the_search_path(
        make_daemon, world, e2e_clock, store_url, second_url, monkeypatch):
    stocked(store_url)
    stocked(second_url)
    by_report = make_daemon(store_url=store_url, integrations=US)
    by_search = make_daemon(store_url=second_url, integrations=US)
    first_call = len(world.calls)
    began = clock.now()

    await sync(by_report)
    report_took = clock.now() - began
    report_calls = len(world.calls)
    monkeypatch.setattr(order_report, "ENABLED", False)
    await sync(by_search)
    # both read up to the same moment once more (the normal cursor from here)
    settled = clock.now() - timedelta(minutes=10)
    await sync(by_report)
    await sync(by_search)

    # orders the world has not touched since well before the last reads
    us = MARKETPLACES["US"].id
    stable = {o.order_id for o in world.orders.values()
              if o.marketplace_id == us and o.last_updated_at(clock.now()) < settled
              and o.created + o.lag < settled}
    from_report = await by_report.store.read(book)
    from_search = await by_search.store.read(book)
    assert len(stable) > 300
    assert stable <= set(from_report) and stable <= set(from_search)
    assert {i: from_report[i] for i in stable} == {i: from_search[i] for i in stable}
    kinds = {(v[0], v[2]) for i, v in from_report.items() if i in stable}
    assert {(OrderStatus.SHIPPED, Fulfillment.MFN), (OrderStatus.SHIPPED, Fulfillment.FBA),
            (OrderStatus.NEW, Fulfillment.MFN)} <= kinds and any(
        k[0] is OrderStatus.CANCELED for k in kinds)
    assert any(v[8] for i, v in from_report.items() if i in stable), "stock moved"

    # the report path: one report, searchOrders only for the open merchant orders, no 429
    open_mfn = sum(1 for i in stable if from_report[i][0] is OrderStatus.NEW
                   and from_report[i][2] is Fulfillment.MFN)
    assert calls(world, first_call, "createReport") == 1
    searches = sum(1 for c in world.calls[first_call:report_calls]
                   if c.operation == "searchOrders")
    assert searches <= open_mfn // 100 + 3
    assert calls(world, first_call, "searchOrders", 429) == 0
    assert report_took < timedelta(minutes=15)
    # buyer data only where a shipment needs it: open merchant orders (an order changed
    # after the report's end was read again by the normal search, with its buyer)
    pii_held = await by_report.store.read(holding)
    report_end = began - order_report.REPORT_LAG - timedelta(minutes=10)
    only_report = {o.order_id for o in world.orders.values()
                   if o.order_id in stable and o.last_updated_at(clock.now()) < report_end}
    assert len(only_report) > 200
    assert all(pii_held[i] == (from_report[i][0] is OrderStatus.NEW
                               and from_report[i][2] is Fulfillment.MFN) for i in only_report)


class Crash(Exception):
    """The process dies here."""


async def test_a_crash_in_the_middle_of_the_report_resumes_where_it_stood(
        make_daemon, world, e2e_clock, store_url, monkeypatch):
    stocked(store_url)
    monkeypatch.setattr(order_report, "CHUNK", 40)
    real_map = order_report.map_groups
    pages = []

    def dying(*args, **kwargs):
        pages.append(1)
        if len(pages) == 4:
            raise Crash("killed between two pages")
        return real_map(*args, **kwargs)

    monkeypatch.setattr(order_report, "map_groups", dying)
    first = make_daemon(store_url=store_url, integrations=US)
    with pytest.raises(Exception) as crashed:
        await sync(first)
    assert "killed" in str(crashed.value) or isinstance(crashed.value, Crash) or \
        any(isinstance(e, Crash) for e in getattr(crashed.value, "exceptions", ()))
    stored_before = len(await first.store.read(book))
    assert stored_before > 0

    # a new process: nothing in memory, the same database
    order_report._DOCUMENTS.clear()  # noqa: SLF001
    order_report._HEADERS.clear()  # noqa: SLF001
    monkeypatch.setattr(order_report, "map_groups", real_map)
    documents_before = calls(world, 0, "getReportDocument")
    second = make_daemon(store_url=store_url, integrations=US)
    await sync(second)

    assert calls(world, 0, "createReport") == 1, "the same report, not a new one"
    assert calls(world, 0, "getReportDocument") == documents_before + 1
    us = MARKETPLACES["US"].id
    history = {o.order_id for o in world.orders.values()
               if o.marketplace_id == us and o.last_updated_at(clock.now())
               < clock.now() - timedelta(minutes=40)}
    stored = await second.store.read(book)
    assert history <= set(stored) and len(stored) > stored_before

    def reservations(session):
        return session.execute(
            select(StockMovement.order_item_id, func.count())
            .where(StockMovement.reason == "reserve").group_by(StockMovement.order_item_id)
        ).all()
    assert all(count == 1 for _, count in await second.store.read(reservations))


async def test_orders_whose_rows_break_the_schema_are_quarantined_and_the_rest_go_in(
        make_daemon, world, e2e_clock, store_url):
    stocked(store_url)
    us = MARKETPLACES["US"].id
    old = sorted((o for o in world.orders.values() if o.marketplace_id == us
                  and o.last_updated_at(clock.now()) < clock.now() - timedelta(hours=2)
                  and o.status_at(clock.now()) in ("SHIPPED", "CANCELLED")),
                 key=lambda o: o.order_id)
    faults = ("ancient_date", "unknown_enum", "missing_field", "wrong_type",
              "string_for_object")
    broken = {order.order_id: fault for order, fault in zip(old, faults)}
    for order in old[:len(faults)]:
        order.malformed = broken[order.order_id]
    daemon = make_daemon(store_url=store_url, integrations=US)

    await sync(daemon)

    stored = await daemon.store.read(book)
    assert not set(broken) & set(stored)
    assert {o.order_id for o in old[len(faults):]} <= set(stored)
    records = await daemon.store.read(lambda s: quarantine.list_records(s, kind="import_orders"))
    by_id = {r.record_id: r for r in records}
    assert set(broken) <= set(by_id)
    reasons = {fault: by_id[order_id].reason for order_id, fault in broken.items()}
    assert "purchase-date" in reasons["ancient_date"]
    assert "order-status 'AwaitingSimulatedState'" in reasons["unknown_enum"]
    assert "purchase-date is missing" in reasons["missing_field"]
    assert "quantity" in reasons["wrong_type"] and "line " in reasons["wrong_type"]
    assert "item-price" in reasons["string_for_object"]
    # a person sees the faulty values, never where the buyer lives
    for order_id in broken:
        order = world.orders[order_id]
        text = repr(by_id[order_id].raw)
        assert order.order_id in text
        assert order.address["postalCode"] not in text and order.address["city"] not in text
