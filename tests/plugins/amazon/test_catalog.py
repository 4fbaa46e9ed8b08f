"""import_products (listings report) and import_stock (FBA) end to end."""

from __future__ import annotations

from decimal import Decimal

import trio

from marketsync.core.types import Cursor, Fulfillment
from marketsync.plugins.amazon import inventory, reports

from .conftest import calls


async def follow_report(integration, cursor=Cursor(), limit=50):
    """Call import_products as the core would: again later while the report is pending."""
    for _ in range(limit):
        page = await reports.import_products(integration, cursor)
        if page.done:
            return page
        assert not page.items
        cursor = page.next
        await trio.sleep(60)
    raise AssertionError("the report never finished")


async def test_listings_report_gives_every_listing(make_integration, world, autojump_clock):
    page = await follow_report(make_integration("DE"))
    by_sku = {item.channel_sku: item for item in page.items}
    assert set(by_sku) == {"MUG-1", "KETTLE-1", "SPORK-FBA", "STOVE-FBA"}
    mug = by_sku["MUG-1"]
    assert mug.fulfillment is Fulfillment.MFN and mug.asin == "B0PLUG0001"
    assert mug.price.amount == Decimal("9.00") and mug.price.currency == "EUR"
    assert mug.quantity is not None and mug.title == "Mug" and mug.status == "Active"
    assert mug.ean == "4006381333931" and by_sku["KETTLE-1"].ean is None
    assert by_sku["SPORK-FBA"].fulfillment is Fulfillment.FBA
    assert by_sku["SPORK-FBA"].quantity is None
    # the quantities are as of the report's processing: the core's opening stock needs it
    report = next(iter(world.catalog.reports.reports.values()))
    assert page.next.state == {"complete": True,
                               "snapshot_at": report.ended.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert len(calls(world, "createReport")) == 1


async def test_a_restart_follows_the_same_report(make_integration, world, autojump_clock):
    """The report id lives in the cursor: a new process resumes it, no second request."""
    first = await reports.import_products(make_integration("DE"), Cursor())
    assert not first.done and first.next.state["report_id"]
    stored = Cursor.from_json(first.next.to_json())  # what the core kept in its database
    await trio.sleep(600)
    page = await follow_report(make_integration("DE"), stored)
    assert page.items
    assert len(calls(world, "createReport")) == 1


async def test_a_cancelled_report_means_no_data(make_integration, world, autojump_clock):
    """Amazon cancels a report without rows: an empty page that is not a full snapshot."""
    page = await follow_report(make_integration("FR"))
    assert page.done and not page.items
    assert not page.next.state.get("complete")
    assert not page.next.state.get("report_id")


def test_report_columns_are_read_by_name():
    content = ("status\tseller-sku\tprice\tquantity\tasin1\tproduct-id-type\tproduct-id\t"
               "fulfillment-channel\titem-name\n"
               "Inactive\tA-1\t3.50\t\tB0X\t4\t4006381333931\tAMAZON_EU\tThing\n"
               "Active\t\t1\t1\t\t\t\tDEFAULT\tNo sku\n"
               "Active\tA-2\tcheap\t1\t\t\t\tDEFAULT\tBad price\n").encode()
    items, rejected = reports.parse_listings(content, "EUR")
    assert [(i.channel_sku, i.status, i.fulfillment, i.ean) for i in items] == [
        ("A-1", "Inactive", Fulfillment.FBA, "4006381333931")]
    assert [r.reason for r in rejected] == ["line 3: no seller-sku",
                                            "line 4: price 'cheap' is not a number"]


async def test_fba_stock_reads_every_page_at_once(make_integration, world, autojump_clock):
    world.catalog.timing.fba_page_size = 1  # two FBA SKUs: two pages
    page = await inventory.import_stock(make_integration("DE"), Cursor())
    assert page.done and page.next.token is None and page.next.state == {"complete": True}
    assert sorted(s.channel_sku for s in page.items) == ["SPORK-FBA", "STOVE-FBA"]
    assert len(calls(world, "getInventorySummaries", 200)) == 2
    stock = next(s for s in page.items if s.channel_sku == "SPORK-FBA")
    spork = world.catalog.get("A2PLUGINEU", "SPORK-FBA")
    assert stock.quantity == spork.fba.fulfillable
    assert stock.details["total"] == spork.fba.total


async def test_fba_stock_is_not_read_when_the_integration_does_not_want_it(make_integration,
                                                                           world, autojump_clock):
    page = await inventory.import_stock(make_integration("DE", inventory="MFN"), Cursor())
    assert page.done and not page.items
    assert not calls(world, "getInventorySummaries")
