"""eBay orders per account: one getOrders serves every site of the seller, each order keeps
its site, each site its own watermark; orders of a site the account does not import are
skipped and counted, never handed over for the core to quarantine."""

from __future__ import annotations

import logging
from datetime import datetime

import trio

from marketsync.core import clock
from marketsync.core.types import Cursor
from marketsync.plugins.ebay import orders as ebay_orders

from .conftest import SELLER
from .test_plugin import drain_orders, orders_page


def site(world, order_id: str) -> str:
    return world.orders[SELLER][order_id]["lineItems"][0]["listingMarketplaceId"]


async def test_one_call_a_page_serves_both_sites(make_integration, world, autojump_clock):
    await trio.sleep(12 * 3600)
    us, gb = make_integration("US"), make_integration("GB")
    found, rejected, cursor = await drain_orders(us, members=(us, gb))
    assert not rejected and {o.channel_order_id for o in found} == set(world.orders[SELLER])
    assert {o.marketplace for o in found} == {"US", "GB"}
    assert all(o.marketplace == site(world, o.channel_order_id)[-2:] for o in found)
    calls = [c for c in world.calls if c.operation == "getOrders"]
    assert len(calls) == 1  # 26 orders a day: one page, one call, for both sites
    end = (clock.now() - ebay_orders.LAG).isoformat()
    assert cursor.state["watermarks"] == {"GB": end, "US": end} and cursor.token is None


async def test_a_site_without_integration_is_skipped_with_a_count(make_integration, world,
                                                                  caplog, autojump_clock):
    await trio.sleep(12 * 3600)
    us = make_integration("US")
    with caplog.at_level(logging.INFO):
        found, rejected, cursor = await drain_orders(us)
    gb_orders = [i for i in world.orders[SELLER] if site(world, i) == "EBAY_GB"]
    assert gb_orders and not rejected and {o.marketplace for o in found} == {"US"}
    line = next(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert f"{len(gb_orders)} order(s)" in line and f"EBAY_GB {len(gb_orders)}" in line
    assert set(cursor.state["watermarks"]) == {"US"}  # GB's history is still unread
    # GB's integration added later: its window starts from its own history
    gb = make_integration("GB")
    again, _, cursor = await drain_orders(us, cursor, members=(us, gb))
    assert set(gb_orders) <= {o.channel_order_id for o in again}
    assert set(cursor.state["watermarks"]) == {"US", "GB"}


async def test_a_site_paused_while_paging_keeps_its_watermark(make_integration, world,
                                                              monkeypatch, autojump_clock):
    monkeypatch.setattr(ebay_orders, "PAGE_SIZE", 5)
    us, gb = make_integration("US"), make_integration("GB")
    await trio.sleep(6 * 3600)
    _, _, cursor = await drain_orders(us, members=(us, gb))
    marks = dict(cursor.state["watermarks"])
    await trio.sleep(12 * 3600)
    first = await orders_page(us, cursor, members=(us, gb))
    assert not first.done and first.next.token is not None
    # GB's integration goes INCOMPLETE: the next pages are asked for US alone
    rest, _, cursor = await drain_orders(us, first.next, members=(us,))
    assert all(o.marketplace == "US" for o in rest)
    assert cursor.state["watermarks"]["GB"] == marks["GB"]  # read again when it is back
    assert datetime.fromisoformat(cursor.state["watermarks"]["US"]) > datetime.fromisoformat(marks["US"])
    assert cursor.since == datetime.fromisoformat(marks["GB"])


async def test_a_cursor_without_its_token_is_a_fresh_window(make_integration, world,
                                                            monkeypatch, autojump_clock):
    """After CursorExpired the core keeps since and state but drops the token."""
    monkeypatch.setattr(ebay_orders, "PAGE_SIZE", 5)
    await trio.sleep(12 * 3600)
    us = make_integration("US")
    first = await orders_page(us)
    expired = Cursor(since=first.next.since, state=first.next.state)
    again = await orders_page(us, expired)
    assert [o.channel_order_id for o in again.items] == [o.channel_order_id for o in first.items]
