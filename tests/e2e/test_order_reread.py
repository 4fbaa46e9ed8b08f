"""``marketsync sync ALIAS import_orders --since 3d`` on an order book that already holds
the window (issue 14), end to end: the daemon, the Amazon plugin and the simulator, on
SQLite and PostgreSQL.

The report re-read meets orders stored through searchOrders with their real item ids and
buyer data. It must leave the same order book as a daemon that never re-read (no second
line, no second reservation or shipment, the buyer data kept, newer statuses applied),
resume after a crash in its middle, and hand the normal cursor back so that orders
arriving during and after it are imported once.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import trio
from sqlalchemy import func, select

from marketsync.core import clock
from marketsync.core.cli import oneshot
from marketsync.core.store.models import Order, OrderItem, StockMovement
from marketsync.core.types import PROVISIONAL_ITEM_ID, Fulfillment, OrderStatus
from marketsync.plugins.amazon import order_report
from marketsync.plugins.amazon.marketplaces import MARKETPLACES

from .test_order_backfill import (  # noqa: F401 - fixtures
    US, Crash, _no_document_left, book, calls, holding, scenario_changes, second_url,
    stocked, sync)


async def reread(daemon, since: str = "3d") -> str:
    message = await oneshot.sync(daemon, "amazon-us", "import_orders", stream=io.StringIO(),
                                 since=since)
    assert " done: " in message, message
    return message


def lines(session) -> dict[str, list[str]]:
    return {o.channel_order_id: sorted(i.channel_item_id for i in o.items)
            for o in session.execute(select(Order)).scalars()}


def effects_per_item(session) -> list[tuple[int, str, int]]:
    return session.execute(
        select(StockMovement.order_item_id, StockMovement.reason, func.count())
        .group_by(StockMovement.order_item_id, StockMovement.reason)).all()


def shipped_beyond_quantity(session) -> list[int]:
    rows = session.execute(
        select(OrderItem.id, OrderItem.quantity, func.sum(StockMovement.delta_on_hand))
        .join(StockMovement, StockMovement.order_item_id == OrderItem.id)
        .where(StockMovement.reason == "ship").group_by(OrderItem.id, OrderItem.quantity)).all()
    return [item for item, quantity, moved in rows if -int(moved) > quantity]


async def searched_first(make_daemon, store_url, second_url, monkeypatch):
    """Two daemons with the same history read through searchOrders: one to re-read, one
    that never does (the order book the re-read must leave)."""
    stocked(store_url)
    stocked(second_url)
    monkeypatch.setattr(order_report, "ENABLED", False)
    rereading = make_daemon(store_url=store_url, integrations=US)
    reference = make_daemon(store_url=second_url, integrations=US)
    await sync(rereading)
    await sync(reference)
    monkeypatch.setattr(order_report, "ENABLED", True)
    return rereading, reference


def settled_orders(world, settled) -> set[str]:
    us = MARKETPLACES["US"].id
    return {o.order_id for o in world.orders.values()
            if o.marketplace_id == us and o.last_updated_at(clock.now()) < settled
            and o.created + o.lag < settled}


async def assert_same_book(world, rereading, reference, before_lines, before_pii):
    settled = clock.now() - timedelta(minutes=10)
    stable = settled_orders(world, settled)
    after = await rereading.store.read(book)
    expected = await reference.store.read(book)
    assert len(stable) > 300
    assert stable <= set(after)
    assert {i: after[i] for i in stable} == {i: expected[i] for i in stable}
    kinds = {(v[0], v[2]) for i, v in after.items() if i in stable}
    assert {(OrderStatus.SHIPPED, Fulfillment.MFN), (OrderStatus.SHIPPED, Fulfillment.FBA),
            (OrderStatus.NEW, Fulfillment.MFN)} <= kinds
    assert any(k[0] is OrderStatus.CANCELED for k in kinds)
    # the lines stored with real ids are those lines still: no provisional second line
    now_lines = await rereading.store.read(lines)
    for order_id, ids in before_lines.items():
        assert now_lines[order_id] == ids, order_id
        assert not any(i.startswith(PROVISIONAL_ITEM_ID) for i in now_lines[order_id])
    # the report has no buyer: what was stored is kept
    now_pii = await rereading.store.read(holding)
    lost = [i for i, held in before_pii.items() if held and not now_pii[i]]
    assert lost == []
    assert any(before_pii.values())
    # each effect at most once per item, never more shipped than ordered
    assert all(count == 1 for _, reason, count in await rereading.store.read(effects_per_item)
               if reason in ("reserve", "release"))
    assert await rereading.store.read(shipped_beyond_quantity) == []


async def test_a_since_reread_leaves_the_order_book_a_daemon_without_it_has(
        make_daemon, world, e2e_clock, store_url, second_url, monkeypatch):
    rereading, reference = await searched_first(make_daemon, store_url, second_url,
                                                monkeypatch)
    before_lines = await rereading.store.read(lines)
    before_pii = await rereading.store.read(holding)
    assert len(before_lines) > 300
    await trio.sleep(3 * 3600)  # business goes on: new orders, shipments, cancellations
    first_call = len(world.calls)

    message = await reread(rereading)

    assert calls(world, first_call, "createReport") == 1
    assert calls(world, first_call, "searchOrders", 429) == 0
    assert "record(s)" in message
    # the normal cursor goes on: orders arriving during and after the re-read come once
    await trio.sleep(2 * 3600)
    await sync(rereading)
    await sync(reference)
    await assert_same_book(world, rereading, reference, before_lines, before_pii)


async def test_a_crash_in_the_middle_of_a_reread_resumes_and_applies_nothing_twice(
        make_daemon, world, e2e_clock, store_url, second_url, monkeypatch):
    rereading, reference = await searched_first(make_daemon, store_url, second_url,
                                                monkeypatch)
    before_lines = await rereading.store.read(lines)
    before_pii = await rereading.store.read(holding)
    await trio.sleep(3600)
    monkeypatch.setattr(order_report, "CHUNK", 40)
    real_map = order_report.map_groups
    pages = []

    def dying(*args, **kwargs):
        pages.append(1)
        if len(pages) == 3:
            raise Crash("killed between two pages")
        return real_map(*args, **kwargs)

    monkeypatch.setattr(order_report, "map_groups", dying)
    with pytest.raises(Exception) as crashed:
        await reread(rereading)
    assert "killed" in str(crashed.value) or isinstance(crashed.value, Crash) or \
        any(isinstance(e, Crash) for e in getattr(crashed.value, "exceptions", ()))

    # a new process: nothing in memory; the plain sync (or the daemon) goes on with it
    order_report._DOCUMENTS.clear()  # noqa: SLF001
    order_report._HEADERS.clear()  # noqa: SLF001
    monkeypatch.setattr(order_report, "map_groups", real_map)
    second = make_daemon(store_url=store_url, integrations=US)
    await sync(second)
    assert calls(world, 0, "createReport") == 1, "the same report, not a new one"
    await sync(reference)
    await assert_same_book(world, second, reference, before_lines, before_pii)


async def test_a_window_the_channel_does_not_keep_is_refused_in_one_line(
        make_daemon, world, e2e_clock, store_url):
    stocked(store_url)
    daemon = make_daemon(store_url=store_url, integrations=US)
    first_call = len(world.calls)
    for since, says in (("45d", "keeps 30 days"), ("yesterday", "neither a duration"),
                        ("2999-01-01", "not in the past")):
        message = await oneshot.sync(daemon, "amazon-us", "import_orders",
                                     stream=io.StringIO(), since=since)
        assert says in message and "\n" not in message, message
    message = await oneshot.sync(daemon, "amazon-us", "import_products", stream=io.StringIO(),
                                 since="3d")
    assert "import_orders only" in message
    assert calls(world, first_call, "createReport") == 0
    assert calls(world, first_call, "searchOrders") == 0
