"""push_stock, push_prices and poll_submission end to end: patches, feeds, reports, faults."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import trio

from marketsync.core.types import Money, PriceUpdate, StockUpdate, Submission
from marketsync.plugins.amazon import feeds, listings

from .conftest import BASE_URL, EU, calls

DE, UK = "A1PA6795UKMFR9", "A1F83G8C2ARO7P"


async def follow(integration, submission: Submission, limit: int = 200):
    """Poll as the core's poll job does, until the report is done."""
    for _ in range(limit):
        report = await feeds.poll_submission(integration, submission)
        if report.done:
            return report
        assert report.poll_after > 0, "a pending feed must never be polled in a tight loop"
        await trio.sleep(report.poll_after)
    raise AssertionError("the submission never finished")


def results(items):
    return {r.channel_sku: r for r in items}


async def test_few_skus_are_patched_at_once(make_integration, world, autojump_clock):
    integration = make_integration("DE")
    submission = await listings.push_stock(integration, [
        StockUpdate(channel_sku="MUG-1", quantity=7, handling_time_days=3),
        StockUpdate(channel_sku="KETTLE-1", quantity=4),
    ])
    assert submission.poll_after == 0 and not submission.state.get("feed_id")
    assert all(r.accepted for r in submission.results)
    mug = world.catalog.get(EU, "MUG-1")
    assert (mug.quantity, mug.handling_time) == (7, 3)
    kettle = world.catalog.get(EU, "KETTLE-1")
    assert (kettle.quantity, kettle.handling_time) == (4, 1)  # the integration's default
    assert len(calls(world, "patchListingsItem", 200)) == 2
    assert not calls(world, "createFeed")
    report = await feeds.poll_submission(integration, submission)
    assert report.done and report.failed_reason is None


async def test_quantity_and_price_travel_in_one_message(make_integration, world, autojump_clock):
    integration = make_integration("DE")
    submission = await listings.push_stock(integration, [StockUpdate(
        channel_sku="MUG-1", quantity=11, price=Money(amount=Decimal("12.49"), currency="EUR"))])
    assert submission.results[0].accepted
    mug = world.catalog.get(EU, "MUG-1")
    assert mug.quantity == 11
    assert mug.marketplaces[DE].price == Decimal("12.49")
    assert len(calls(world, "patchListingsItem")) == 1


async def test_fba_and_unknown_skus_fail_alone_on_the_fast_path(make_integration, world,
                                                                autojump_clock):
    submission = await listings.push_stock(make_integration("DE"), [
        StockUpdate(channel_sku="MUG-1", quantity=3),
        StockUpdate(channel_sku="SPORK-FBA", quantity=3),
        StockUpdate(channel_sku="NO-SUCH-SKU", quantity=3),
    ])
    by_sku = results(submission.results)
    assert by_sku["MUG-1"].accepted
    assert not by_sku["SPORK-FBA"].accepted and "Amazon" in by_sku["SPORK-FBA"].message
    assert not by_sku["NO-SUCH-SKU"].accepted and by_sku["NO-SUCH-SKU"].message


async def test_many_skus_go_as_one_feed_where_some_fail(make_integration, world, autojump_clock):
    """Past the patch limit: one JSON_LISTINGS_FEED, per-SKU results from its report."""
    integration = make_integration("DE", patch_limit=2)
    submission = await listings.push_stock(integration, [
        StockUpdate(channel_sku="MUG-1", quantity=21),
        StockUpdate(channel_sku="KETTLE-1", quantity=22, handling_time_days=4),
        StockUpdate(channel_sku="SPORK-FBA", quantity=23),
        StockUpdate(channel_sku="NO-SUCH-SKU", quantity=24),
    ])
    assert submission.channel_id == submission.state["feed_id"]
    assert submission.poll_after > 0 and not submission.results
    assert len(calls(world, "createFeed", 202)) == 1 and not calls(world, "patchListingsItem")
    report = await follow(integration, submission)
    assert report.failed_reason is None
    by_sku = results(report.results)
    assert by_sku["MUG-1"].accepted and by_sku["KETTLE-1"].accepted
    assert not by_sku["SPORK-FBA"].accepted and not by_sku["NO-SUCH-SKU"].accepted
    assert "NO-SUCH-SKU" in by_sku["NO-SUCH-SKU"].message
    assert world.catalog.get(EU, "MUG-1").quantity == 21
    kettle = world.catalog.get(EU, "KETTLE-1")
    assert (kettle.quantity, kettle.handling_time) == (22, 4)


async def test_a_sku_going_to_zero_is_patched_even_in_a_bulk_push(make_integration, world,
                                                                  autojump_clock):
    integration = make_integration("DE", patch_limit=1)
    submission = await listings.push_stock(integration, [
        StockUpdate(channel_sku="MUG-1", quantity=0),
        StockUpdate(channel_sku="KETTLE-1", quantity=9),
    ])
    assert [r.channel_sku for r in submission.results] == ["MUG-1"]
    assert world.catalog.get(EU, "MUG-1").quantity == 0  # at once, before the feed runs
    assert submission.state["skus"] == ["KETTLE-1"]
    report = await follow(integration, submission)
    # the patched SKU's result comes again with the feed's: the core applies it then
    assert [(r.channel_sku, r.accepted) for r in report.results] == [("MUG-1", True),
                                                                    ("KETTLE-1", True)]


async def test_a_stuck_feed_is_reported_so_the_core_resends(make_integration, world,
                                                            autojump_clock):
    integration = make_integration("DE", patch_limit=1, feed_stuck_minutes=30)
    control = httpx.AsyncClient(transport=integration.http._transport, base_url=BASE_URL)
    assert (await control.post("/_sandbox/faults", json={"stuckFeeds": True})).status_code == 200
    submission = await listings.push_stock(integration, [
        StockUpdate(channel_sku="MUG-1", quantity=5), StockUpdate(channel_sku="KETTLE-1", quantity=6)])
    start = trio.current_time()
    report = await follow(integration, submission)
    assert report.failed_reason and report.failed_reason.startswith("stuck")
    assert 30 * 60 <= trio.current_time() - start <= 35 * 60
    polls = len(calls(world, "getFeed"))
    assert polls <= 35, f"{polls} getFeed calls in 30 minutes is a tight loop"


def test_a_young_feed_is_polled_often_and_an_old_one_less():
    """Seen soon after Amazon finishes; a feed that hangs is not asked every 15 s for an hour."""
    assert feeds.next_poll(timedelta(seconds=90)) == 15
    assert feeds.next_poll(timedelta(minutes=4)) == 15
    assert feeds.next_poll(timedelta(minutes=10)) == 120
    assert feeds.next_poll(timedelta(hours=2)) == 300


async def test_a_fatal_feed_fails_as_a_whole(make_integration, world, autojump_clock):
    integration = make_integration("DE", patch_limit=1)
    control = httpx.AsyncClient(transport=integration.http._transport, base_url=BASE_URL)
    await control.post("/_sandbox/faults", json={"fatalFeeds": True})
    submission = await listings.push_stock(integration, [
        StockUpdate(channel_sku="MUG-1", quantity=5), StockUpdate(channel_sku="KETTLE-1", quantity=6)])
    report = await follow(integration, submission)
    assert report.failed_reason and "FATAL" in report.failed_reason
    assert not report.results


async def test_prices_for_two_marketplaces_of_one_account(make_integration, world, autojump_clock):
    integration = make_integration("DE")
    submission = await listings.push_prices(integration, [
        PriceUpdate(channel_sku="MUG-1", price=Money(amount=Decimal("9.99"), currency="EUR")),
        PriceUpdate(channel_sku="MUG-1", marketplace="UK",
                    price=Money(amount=Decimal("8.49"), currency="GBP")),
    ])
    assert submission.kind == "prices" and [r.accepted for r in submission.results] == [True]
    mug = world.catalog.get(EU, "MUG-1")
    assert mug.marketplaces[DE].price == Decimal("9.99")
    assert mug.marketplaces[UK].price == Decimal("8.49")
    assert len(calls(world, "patchListingsItem")) == 1


async def test_prices_in_bulk_go_as_a_feed(make_integration, world, autojump_clock):
    integration = make_integration("DE", patch_limit=1)
    submission = await listings.push_prices(integration, [
        PriceUpdate(channel_sku="MUG-1", price=Money(amount=Decimal("9.49"), currency="EUR")),
        PriceUpdate(channel_sku="KETTLE-1", price=Money(amount=Decimal("0"), currency="EUR")),
    ])
    report = await follow(integration, submission)
    by_sku = results(report.results)
    assert by_sku["MUG-1"].accepted and not by_sku["KETTLE-1"].accepted
    assert world.catalog.get(EU, "MUG-1").marketplaces[DE].price == Decimal("9.49")


async def test_the_listings_real_product_type_is_looked_up_once(make_integration, world,
                                                                autojump_clock):
    """Amazon refuses a patch naming another productType; it is learnt via search, cached."""
    world.catalog.get(EU, "KETTLE-1").product_type = "KITCHEN"
    integration = make_integration("DE")
    first = await listings.push_stock(integration, [StockUpdate(channel_sku="KETTLE-1",
                                                                quantity=8)])
    assert first.results[0].accepted, first.results[0].message
    second = await listings.push_stock(integration, [StockUpdate(channel_sku="KETTLE-1",
                                                                 quantity=9)])
    assert second.results[0].accepted
    assert world.catalog.get(EU, "KETTLE-1").quantity == 9
    assert len(calls(world, "searchListingsItems", 200)) == 1


async def test_a_feed_amazon_lost_is_failed_so_its_skus_go_again(make_integration,
                                                                 autojump_clock):
    lost = Submission(kind="stock", channel_id="999", channel_skus=("MUG-1",),
                      state={"feed_id": "999", "skus": ["MUG-1"]})
    report = await feeds.poll_submission(make_integration("DE"), lost)
    assert report.done and "unknown" in report.failed_reason


async def test_a_quantity_the_account_already_sent_is_not_sent_again(make_integration, world,
                                                                      autojump_clock):
    """Quantity is per seller and region: UK after DE with the same figure makes no call;
    a different figure, or one older than the TTL, is sent."""
    de, uk = make_integration("DE"), make_integration("UK")
    await listings.push_stock(de, [StockUpdate(channel_sku="MUG-1", quantity=7, handling_time_days=1)])
    assert len(calls(world, "patchListingsItem")) == 1
    same = await listings.push_stock(uk, [StockUpdate(channel_sku="MUG-1", quantity=7,
                                                      handling_time_days=1)])
    assert len(calls(world, "patchListingsItem")) == 1
    assert same.poll_after == 0 and [r.accepted for r in same.results] == [True]
    await listings.push_stock(uk, [StockUpdate(channel_sku="MUG-1", quantity=6, handling_time_days=1)])
    assert len(calls(world, "patchListingsItem")) == 2
    await trio.sleep(listings.STOCK_SENT_TTL + 1)
    await listings.push_stock(de, [StockUpdate(channel_sku="MUG-1", quantity=6, handling_time_days=1)])
    assert len(calls(world, "patchListingsItem")) == 3
    assert world.catalog.get(EU, "MUG-1").quantity == 6


async def test_a_quantity_sent_since_by_feed_makes_the_remembered_one_stale(make_integration,
                                                                           world, autojump_clock):
    """7 patched, then 9 by feed, then 7 again: Amazon holds 9, so 7 must go out. (It was
    skipped as "already sent": Amazon kept showing 9 units while 7 were on the shelf.)"""
    de = make_integration("DE", patch_limit=1)
    await listings.push_stock(de, [StockUpdate(channel_sku="MUG-1", quantity=7, handling_time_days=1)])
    by_feed = await listings.push_stock(de, [
        StockUpdate(channel_sku="MUG-1", quantity=9, handling_time_days=1),
        StockUpdate(channel_sku="KETTLE-1", quantity=4, handling_time_days=1)])
    assert by_feed.state.get("feed_id")
    assert all(r.accepted for r in (await follow(de, by_feed)).results)
    assert world.catalog.get(EU, "MUG-1").quantity == 9

    again = await listings.push_stock(de, [StockUpdate(channel_sku="MUG-1", quantity=7,
                                                       handling_time_days=1)])

    assert [r.message for r in again.results] != ["already sent for this account"]
    assert world.catalog.get(EU, "MUG-1").quantity == 7


async def test_listings_feeds_of_one_account_keep_to_five_per_five_minutes(make_integration,
                                                                           world, autojump_clock):
    """createFeed's own plan (burst 15) would send six feeds at once; Amazon takes five
    JSON_LISTINGS_FEED per five minutes per region and refuses the sixth with a 429 (seen
    on the simulated day when six EU marketplaces first pushed). The plugin names that
    limit with the call, so the account's marketplaces wait their turn instead."""
    de, uk = make_integration("DE", patch_limit=1), make_integration("UK", patch_limit=1)
    submissions = []
    async with trio.open_nursery() as nursery:
        for number in range(6):
            async def push(integration=(de, uk)[number % 2], quantity=30 + number):
                submissions.append(await listings.push_stock(integration, [
                    StockUpdate(channel_sku="MUG-1", quantity=quantity),
                    StockUpdate(channel_sku="KETTLE-1", quantity=quantity)]))
            nursery.start_soon(push)
    assert len(submissions) == 6 and all(s.state.get("feed_id") for s in submissions)
    created = calls(world, "createFeed")
    assert [c.status for c in created] == [202] * 6, "no createFeed was refused"
    times = sorted(c.at for c in created)
    for first, sixth in zip(times, times[5:]):
        assert sixth - first >= timedelta(minutes=5)
