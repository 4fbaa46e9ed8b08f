"""The report backfill against the simulator: its stages, its fallbacks, and files that
break the schema (order_report.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import trio

from marketsync.core import clock
from marketsync.core.types import PROVISIONAL_ITEM_ID, Cursor, Fulfillment, OrderStatus
from marketsync.plugins.amazon import order_report, orders
from marketsync.plugins.amazon.sandbox import order_report as simulated_report

from .conftest import calls


@pytest.fixture(autouse=True)
def _fresh_process():
    order_report._DOCUMENTS.clear()  # noqa: SLF001
    order_report._HEADERS.clear()  # noqa: SLF001
    yield


async def follow(integration, cursor=None, members=None, limit=200):
    """Call the hook as the core does (a minute's wait while the report is prepared) until
    the backfill has handed over to the normal cursor; returns (pages, cursor)."""
    cursor = cursor or Cursor()
    pages = []
    for _ in range(limit):
        page = await _hook(integration, cursor, members)
        pages.append(page)
        cursor = page.next
        if orders.WATERMARKS in cursor.state and not cursor.token or page.done:
            return pages, cursor
        if not page.items:
            await trio.sleep(60)
    raise AssertionError("the backfill never handed over")


async def _hook(integration, cursor, members):
    if order_report.wanted(cursor):
        return await order_report.import_orders(integration, cursor, members)
    return await orders.import_orders(integration, cursor, members)


async def test_the_stages_hand_over_to_the_normal_cursor_at_the_reports_end(
        make_integration, world, autojump_clock):
    us = make_integration("US")
    pages, cursor = await follow(us)
    found = [o for p in pages for o in p.items]
    assert len(calls(world, "createReport")) == 1
    assert calls(world, "getReportDocument") and calls(world, "searchOrders")
    assert all(s.status < 300 for s in calls(world, "searchOrders"))
    assert {o.marketplace for o in found} == {"US"}
    from_report = [o for o in found if o.items[0].channel_item_id.startswith(PROVISIONAL_ITEM_ID)]
    searched = [o for o in found if o not in from_report]
    assert from_report and searched
    # open merchant orders come from the search, with their buyer; the report has none
    assert all(not (o.fulfillment is Fulfillment.MFN and o.status is OrderStatus.NEW)
               for o in from_report)
    assert all(o.fulfillment is Fulfillment.MFN and o.status is OrderStatus.NEW
               for o in searched)
    assert any(o.buyer for o in searched) and not any(o.buyer for o in from_report)
    # the normal search goes on from the report's end
    end = cursor.since
    assert cursor.state[orders.WATERMARKS] == {"US": end.isoformat()}
    assert end <= clock.now() - order_report.REPORT_LAG
    assert max(o.updated_at for o in found) <= end


@pytest.mark.parametrize("how", ["fatal", "cancelled", "never ready"])
async def test_a_report_that_fails_falls_back_to_searchorders_and_says_so(
        how, make_integration, world, autojump_clock, monkeypatch, caplog):
    if how == "fatal":  # the range is longer than the simulator accepts
        monkeypatch.setattr(simulated_report, "MAX_RANGE", timedelta(days=1))
    elif how == "never ready":
        world.catalog.timing.report_processing = timedelta(hours=5)
    integration = make_integration("FR" if how == "cancelled" else "US")  # FR: no orders
    with caplog.at_level(logging.WARNING):
        pages, cursor = await follow(integration)
    assert len(calls(world, "createReport")) == 1
    assert not calls(world, "getReportDocument")
    warning = [r.getMessage() for r in caplog.records if "through searchOrders" in r.getMessage()]
    assert len(warning) == 1
    assert {"fatal": "ended FATAL", "cancelled": "ended CANCELLED",
            "never ready": "still IN_PROGRESS"}[how] in warning[0]
    if how != "cancelled":
        found = [o for p in pages for o in p.items]
        assert found and not any(
            i.channel_item_id.startswith(PROVISIONAL_ITEM_ID) for o in found for i in o.items)
    assert cursor.state.get(orders.WATERMARKS), "the searchOrders path took over"


HEADER = "\t".join(simulated_report.COLUMNS)


def line(**values):
    row = dict.fromkeys(simulated_report.COLUMNS, "")
    row.update({"amazon-order-id": "111-0000001-0000001", "purchase-date": "2026-11-01T10:00:00+00:00",
                "last-updated-date": "2026-11-01T12:00:00+00:00", "order-status": "Shipped",
                "fulfillment-channel": "Amazon", "sales-channel": "Amazon.com", "sku": "MUG-1",
                "quantity": "2", "currency": "USD", "item-price": "20.00",
                "ship-city": "Seattle", "ship-postal-code": "98109", "ship-country": "US"})
    row.update({k.replace("_", "-"): v for k, v in values.items()})
    return "\t".join(row[c] for c in simulated_report.COLUMNS)


def test_rows_that_break_the_schema_reject_their_order_alone():
    text = "\n".join([
        HEADER,
        line(),
        line(amazon_order_id="111-0000001-0000002", sku="KETTLE-1", quantity="1",
             item_price="30.00"),
        line(amazon_order_id="111-0000001-0000002", sku="MUG-1", quantity="1",
             item_price="10.00"),
        line(amazon_order_id="111-0000001-0000003") + "\textra",   # a tab in a title
        "111-0000001-0000004\tcut short",
        line(amazon_order_id="111-0000001-0000005", quantity="two"),
        line(amazon_order_id="111-0000001-0000006", sales_channel="Non-Amazon"),
        line(amazon_order_id="111-0000001-0000007", order_status="Unshipped",
             fulfillment_channel="Merchant"),
        line(amazon_order_id="111-0000001-0000008", sales_channel="Amazon.example"),
    ]) + "\n"
    header, groups = order_report.group_lines(text)
    items, rejected = order_report.map_groups(header, groups, ["US", "CA"])
    assert [o.channel_order_id for o in items] == ["111-0000001-0000001", "111-0000001-0000002"]
    two = items[1]
    assert [(i.channel_sku, i.quantity, str(i.unit_price.amount)) for i in two.items] == [
        ("KETTLE-1", 1, "30.00"), ("MUG-1", 1, "10.00")]
    assert str(two.total.amount) == "40.00" and two.status is OrderStatus.SHIPPED
    assert two.shipping_address.country_code == "US" and two.shipping_address.city is None
    assert not two.pii_available and two.buyer is None
    reasons = {r.record_id: r.reason for r in rejected}
    assert reasons == {
        "111-0000001-0000003": "line 5 has 32 fields, the header 31",
        "111-0000001-0000004": "line 6 has 2 fields, the header 31",
        "111-0000001-0000005": "line 7: quantity 'two' is not a count",
        "111-0000001-0000008": "line 10: sales-channel 'Amazon.example' is no marketplace "
                               "of the report",
    }
    for record in rejected:  # the quarantine sees the fault, not where the buyer lives
        assert "98109" not in repr(record.raw) and "Seattle" not in repr(record.raw)


async def test_order_backfill_search_keeps_the_first_import_on_searchorders(
        make_integration, world, autojump_clock):
    us = make_integration("US", order_backfill="search")
    assert not order_report.wanted(Cursor(), [us])
    assert order_report.wanted(Cursor(), [make_integration("US")])
