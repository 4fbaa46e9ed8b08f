"""import_orders end to end against the simulator: windows, filters, overlap, bad records."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import trio

from marketsync.core import clock
from marketsync.core.errors import CursorExpired
from marketsync.core.types import Cursor, Fulfillment, OrderStatus
from marketsync.plugins.amazon import orders

from .conftest import BASE_URL, START, calls


async def drain(integration, cursor=Cursor()):
    """Call the hook until done, as the core's job does; returns (pages, last cursor)."""
    pages = []
    while True:
        page = await orders.import_orders(integration, cursor)
        pages.append(page)
        cursor = page.next
        if page.done:
            return pages, cursor


def ids(pages):
    return [o.channel_order_id for p in pages for o in p.items]


async def test_first_run_imports_history_with_items_and_buyer(make_integration, autojump_clock):
    pages, cursor = await drain(make_integration("US"))
    found = [o for p in pages for o in p.items]
    assert found, "the simulated US shop has three days of orders"
    assert all(o.marketplace == "US" for o in found)
    assert all(o.items and o.items[0].channel_sku for o in found)
    assert any(o.pii_available and o.buyer and o.shipping_address for o in found)
    assert any(o.status is OrderStatus.SHIPPED for o in found)
    assert cursor.since is not None and cursor.token is None
    # the watermark trails now by more than Amazon's two minutes
    assert clock.now() - cursor.since >= timedelta(minutes=2)


async def test_history_is_capped_at_30_days(make_integration):
    now = START
    after, before = orders.window(make_integration("US", history_days=400), Cursor(), now)
    assert now - after == timedelta(days=30)
    after, _ = orders.window(make_integration("US", history_days=2), Cursor(), now)
    assert now - after == timedelta(days=2)
    assert now - before >= timedelta(minutes=2)


async def test_history_days_limits_the_first_run(make_integration, autojump_clock):
    """history_days=1 returns only orders updated in the last day, fewer than 30 days give."""
    short, _ = await drain(make_integration("US", history_days=1))
    full, _ = await drain(make_integration("US", history_days=30))
    one_day_ago = clock.now() - timedelta(days=1)
    assert all(o.updated_at >= one_day_ago for p in short for o in p.items)
    assert 0 < len(ids(short)) < len(ids(full))


@pytest.mark.parametrize("choice, expected", [("FBA", Fulfillment.FBA), ("MFN", Fulfillment.MFN)])
async def test_order_types_filter(make_integration, autojump_clock, choice, expected):
    pages, _ = await drain(make_integration("US", orders=choice))
    found = [o for p in pages for o in p.items]
    assert found and all(o.fulfillment is expected for o in found)


async def test_pages_follow_the_token_and_keep_the_window(make_integration, autojump_clock,
                                                          monkeypatch):
    monkeypatch.setattr(orders, "PAGE_SIZE", 10)
    integration = make_integration("US")
    first = await orders.import_orders(integration, Cursor())
    assert not first.done and first.next.token and len(first.items) == 10
    assert first.next.since is None  # the watermark moves only when the window is done
    pages, cursor = await drain(integration, first.next)
    everything = ids([first, *pages])
    assert len(everything) == len(set(everything)), "no order twice within one run"
    whole, _ = await drain(make_integration("US"))
    assert sorted(everything) == sorted(ids(whole))


async def test_overlap_rereads_without_losing_or_duplicating(make_integration, world,
                                                             autojump_clock):
    """Runs every 10 minutes: every order placed is imported, none twice in a run."""
    integration = make_integration("DE")
    book: dict[str, object] = {}
    _, cursor = await drain(integration)
    for _ in range(48):
        await trio.sleep(600)
        pages, next_cursor = await drain(integration, cursor)
        run = ids(pages)
        assert len(run) == len(set(run))
        assert next_cursor.since > cursor.since
        cursor = next_cursor
        book.update((o.channel_order_id, o) for p in pages for o in p.items)
    await trio.sleep(600)
    pages, _ = await drain(integration, cursor)
    book.update((o.channel_order_id, o) for p in pages for o in p.items)
    placed = [o for o in world.orders.values()
              if o.marketplace_id == "A1PA6795UKMFR9" and START < o.created
              and o.created + o.lag < clock.now() - timedelta(minutes=3)]
    assert placed, "eight hours of the simulated German shop place orders"
    assert {o.order_id for o in placed} <= set(book)


async def test_orders_without_pii_are_kept_and_flagged(make_integration, autojump_clock):
    """The AU account has no PII role: orders come without buyer and address, flagged."""
    pages, _ = await drain(make_integration("AU"))
    found = [o for p in pages for o in p.items]
    assert found
    assert all(o.pii_available is False and o.buyer is None and o.shipping_address is None
               for o in found)


async def test_malformed_order_is_rejected_and_the_page_goes_on(make_integration, autojump_clock):
    integration = make_integration("DE")
    _, cursor = await drain(integration)
    control = httpx.AsyncClient(transport=integration.http._transport, base_url=BASE_URL)
    kinds = ("missing_field", "unknown_enum", "ancient_date", "wrong_type", "string_for_object",
             "array_for_object", "array_for_scalar")
    placed = {}
    for kind in kinds:
        answer = await control.post("/_sandbox/orders", json={
            "marketplace": "DE", "items": {"MUG-1": 1}, "malformed": kind})
        assert answer.status_code == 201, answer.text
        placed[answer.json()["orderId"]] = kind
    good = await control.post("/_sandbox/orders", json={"marketplace": "DE", "items": {"MUG-1": 1}})
    await trio.sleep(900)
    pages, _ = await drain(integration, cursor)
    rejected = [r for p in pages for r in p.rejected]
    reasons = " | ".join(r.reason for r in rejected)
    assert {r.record_id for r in rejected} == set(placed), reasons
    assert "createdTime is missing" in reasons
    assert "AWAITING_SIMULATED_STATE" in reasons
    assert "1995" in reasons
    assert good.json()["orderId"] in ids(pages)
    # the shape faults broke the mapping code itself: the reason says how, the trace where
    by_kind = {placed[r.record_id]: r for r in rejected}
    assert by_kind["string_for_object"].reason.startswith("AttributeError")
    assert "orders.py" in by_kind["string_for_object"].trace
    assert by_kind["wrong_type"].reason.startswith("TypeError")
    # what is kept for a person: no buyer or recipient, only their JSON type
    for record in rejected:
        assert record.raw["orderId"] == record.record_id
        assert record.raw.get("buyer") in (None, "<object>")
        assert record.raw.get("recipient") in (None, "<object>", "<string>")
        assert "buyerName" not in repr(record.raw) and "addressLine1" not in repr(record.raw)


async def test_expired_page_token_is_cursor_expired(make_integration, autojump_clock):
    now = clock.now()
    cursor = Cursor(token="no-such-token", state={
        "after": (now - timedelta(hours=3)).isoformat(),
        "before": (now - timedelta(hours=1)).isoformat()})
    with pytest.raises(CursorExpired):
        await orders.import_orders(make_integration("US"), cursor)


async def test_nothing_to_ask_when_the_window_is_empty(make_integration, world, autojump_clock):
    """A cursor newer than now - 2 min: no call at all (Amazon would refuse it)."""
    before = len(calls(world, "searchOrders"))
    page = await orders.import_orders(make_integration("US"), Cursor(since=clock.now()
                                                                     + timedelta(minutes=20)))
    assert page.done and not page.items
    assert len(calls(world, "searchOrders")) == before


async def test_a_token_without_its_window_is_cursor_expired(make_integration, autojump_clock):
    with pytest.raises(CursorExpired):
        await orders.import_orders(make_integration("US"), Cursor(token="t"))
