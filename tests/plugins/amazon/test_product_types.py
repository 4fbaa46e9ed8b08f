"""The productType every listing patch must name: looked up in chunks, several at once."""

from __future__ import annotations

import pytest
import trio

from marketsync.core.errors import TransientError
from marketsync.core.types import Cursor, StockUpdate
from marketsync.plugins.amazon import listings, reports
from marketsync.plugins.amazon.client import SpApi

from .conftest import EU, SCENARIO, calls

SKUS = [f"BULK-{n:04d}" for n in range(400)]  # 20 searchListingsItems chunks


@pytest.fixture
def scenario_changes():
    bulk = [{"sku": sku, "asin": f"B0BULK{n:04d}", "title": f"Bulk {n}", "mfn_quantity": 10,
             "handling_time": 1, "prices": {"DE": "5.00"}} for n, sku in enumerate(SKUS)]
    return {"catalog": [*SCENARIO["catalog"], *bulk]}


async def test_lookups_overlap_so_a_slow_amazon_does_not_add_up(make_integration, world,
                                                                 autojump_clock):
    """20 chunks against 2 s of latency each: one at a time that is 40 s and more; with
    lookups in flight together the operation's rate (5/s) and the latency overlap."""
    for n, sku in enumerate(SKUS):
        world.catalog.get(EU, sku).product_type = "KITCHEN" if n % 2 else "HOME"
    world.faults.latency, world.faults.operations = 2.0, {"searchListingsItems"}
    api = SpApi(make_integration("DE"))

    started = trio.current_time()
    types = await listings.product_types(api, SKUS)
    took = trio.current_time() - started

    assert types == {sku: "KITCHEN" if n % 2 else "HOME" for n, sku in enumerate(SKUS)}
    assert len(calls(world, "searchListingsItems", 200)) == len(SKUS) // listings.SEARCH_CHUNK
    assert took <= 12, took  # 20 calls / 5 in flight × 2 s, plus the rate's pacing


async def test_a_refused_search_stops_the_lookups_and_falls_back(make_integration, world,
                                                                 autojump_clock, caplog):
    world.faults.error_share, world.faults.operations = {404: 1.0}, {"searchListingsItems"}
    api = SpApi(make_integration("DE"))

    types = await listings.product_types(api, SKUS)

    assert set(types.values()) == {listings.DEFAULT_PRODUCT_TYPE}
    # one refusal says enough: the chunks still waiting do not ask
    assert len(calls(world, "searchListingsItems")) < len(SKUS) // listings.SEARCH_CHUNK
    assert "searchListingsItems failed" in caplog.text


async def test_amazon_failing_fails_the_push_with_the_error_itself(make_integration, world,
                                                                   autojump_clock):
    """Not an exception group: the job's error handling must see what it knows."""
    world.faults.error_share, world.faults.operations = {503: 1.0}, {"searchListingsItems"}
    api = SpApi(make_integration("DE"))

    with pytest.raises(TransientError, match="searchListingsItems: HTTP 503"):
        await listings.product_types(api, SKUS)


async def test_the_product_import_learns_the_types_before_the_first_push(make_integration, world,
                                                                         autojump_clock):
    for sku in SKUS:
        world.catalog.get(EU, sku).product_type = "KITCHEN"
    integration = make_integration("DE")
    cursor = Cursor()
    for _ in range(20):  # the report: requested, then followed until done
        page = await reports.import_products(integration, cursor)
        cursor = page.next
        if page.done:
            break
        await trio.sleep(30)
    assert page.done and {i.channel_sku for i in page.items} >= set(SKUS)
    looked_up = len(calls(world, "searchListingsItems", 200))
    assert looked_up >= len(SKUS) // listings.SEARCH_CHUNK

    submission = await listings.push_stock(integration, [StockUpdate(channel_sku=sku, quantity=3)
                                                         for sku in SKUS[:40]])

    assert all(r.accepted for r in submission.results)  # the real productType was named
    assert len(calls(world, "searchListingsItems", 200)) == looked_up  # nothing left to ask


async def test_a_restart_does_not_ask_again_for_the_types_it_learnt(make_integration, world,
                                                                    store, autojump_clock):
    """The types live in the account's plugin state: a new daemon on the same database
    (fresh process memory) names them without a lookup."""
    from marketsync.core.runtime.plugin_state import StoredState

    for sku in SKUS:
        world.catalog.get(EU, sku).product_type = "KITCHEN"
    before = make_integration("DE")
    before.account_state = StoredState.of_account(store, "amazon", "eu")
    assert set((await listings.product_types(SpApi(before), SKUS)).values()) == {"KITCHEN"}
    looked_up = len(calls(world, "searchListingsItems", 200))

    after = make_integration("DE")
    after.account_runtime = {}  # the restarted process remembers nothing itself
    after.account_state = StoredState.of_account(store, "amazon", "eu")
    types = await listings.product_types(SpApi(after), SKUS)

    assert set(types.values()) == {"KITCHEN"}
    assert len(calls(world, "searchListingsItems", 200)) == looked_up
