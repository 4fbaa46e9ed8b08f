"""The simulator's catalog: seeding, channel edits, SKU renames, the view, FBA drift."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import trio

from marketsync.core import clock
from marketsync.plugins.amazon.sandbox import World
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

SELLER, US, CA = "A1CATALOGNA1", "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
SCENARIO = {
    "seed": 11,
    "applications": [{"client_id": "c", "client_secret": "s"}],
    "accounts": [{"seller_id": SELLER, "region": "NA", "marketplaces": ["US", "CA"]}],
    "catalog": [
        {"sku": "MUG", "asin": "B0CT000001", "title": "Mug", "mfn_quantity": 5,
         "handling_time": 1, "prices": {"US": "9.99", "CA": "12.99"}},
        {"sku": "SPORK", "asin": "B0CT000002", "title": "Spork", "fba_quantity": 60,
         "prices": {"US": "5.00"}},
        {"sku": "LAMP", "asin": "B0CT000003", "title": "Lamp", "fba_quantity": 30,
         "prices": {"US": "15.00"}},
    ],
}


def make_world() -> World:
    return World(parse_scenario(SCENARIO))


@pytest.fixture
def world() -> World:
    return make_world()


def test_seeded_offer_has_one_quantity_and_a_price_per_marketplace(world):
    mug = world.catalog.view(SELLER)["MUG"]
    assert mug["quantity"] == 5 and mug["handlingTime"] == 1 and mug["fulfillment"] == "MFN"
    assert {m: v["price"] for m, v in mug["marketplaces"].items()} == {US: "9.99", CA: "12.99"}
    assert all(v["currency"] in ("USD", "CAD") for v in mug["marketplaces"].values())


def test_fba_offer_keeps_its_stock_apart_from_the_merchant_quantity(world):
    spork = world.catalog.view(SELLER)["SPORK"]
    assert spork["fulfillment"] == "AFN" and spork["quantity"] is None
    assert spork["fbaQuantity"] == 60
    assert world.catalog.get(SELLER, "SPORK").fnsku.startswith("X00")


def test_channel_edit_of_quantity_is_shared_by_the_regions_marketplaces(world):
    world.catalog.channel_edit(SELLER, "MUG", quantity=0)
    view = world.catalog.view(SELLER)["MUG"]
    assert view["quantity"] == 0
    assert [v["buyable"] for v in view["marketplaces"].values()] == [False, False]


def test_channel_edit_of_price_needs_the_marketplace(world):
    world.catalog.channel_edit(SELLER, "MUG", marketplace_id=CA, price=Decimal("11.49"))
    view = world.catalog.view(SELLER)["MUG"]["marketplaces"]
    assert (view[CA]["price"], view[US]["price"]) == ("11.49", "9.99")
    with pytest.raises(KeyError, match="not listed in marketplace None"):
        world.catalog.channel_edit(SELLER, "MUG", price=Decimal("1"))


def test_channel_edit_of_an_fba_quantity_moves_fba_stock(world):
    world.catalog.channel_edit(SELLER, "SPORK", quantity=7)
    assert world.catalog.view(SELLER)["SPORK"]["fbaQuantity"] == 7


def test_rename_sku_keeps_the_asin_and_makes_a_new_listing(world):
    old = world.catalog.get(SELLER, "MUG")
    world.catalog.rename_sku(SELLER, "MUG", "MUG-2")
    new = world.catalog.get(SELLER, "MUG-2")
    assert world.catalog.get(SELLER, "MUG") is None
    assert new.asin == old.asin and new.quantity == old.quantity
    assert new.listing_id != old.listing_id
    assert new.marketplaces[US].price == Decimal("9.99")
    view = world.catalog.view(SELLER)
    assert view["MUG"]["deleted"] is True and view["MUG-2"]["deleted"] is False


def test_rename_sku_refuses_unknown_and_taken_skus(world):
    with pytest.raises(KeyError, match="GHOST"):
        world.catalog.rename_sku(SELLER, "GHOST", "X")
    with pytest.raises(ValueError, match="already has SKU 'SPORK'"):
        world.catalog.rename_sku(SELLER, "MUG", "SPORK")


def test_put_offer_validates_its_input(world):
    common = dict(asin="B0X", title="X", marketplace_id=US, price=Decimal("1"), currency="USD",
                  handling_time=None)
    with pytest.raises(ValueError, match="fulfillment must be one of"):
        world.catalog.put_offer(SELLER, "X", quantity=1, fulfillment="FBM", **common)
    with pytest.raises(ValueError, match="quantity must be >= 0"):
        world.catalog.put_offer(SELLER, "X", quantity=-2, **common)
    with pytest.raises(ValueError, match="status must be one of"):
        world.catalog.put_offer(SELLER, "X", quantity=1, status="LIVE", **common)
    with pytest.raises(KeyError, match="unknown seller account 'NOBODY'"):
        world.catalog.put_offer("NOBODY", "X", quantity=1, **common)


def test_put_offer_revives_a_deleted_listing_as_a_new_one(world):
    old_id = world.catalog.get(SELLER, "MUG").listing_id
    world.catalog.delete(world.catalog.get(SELLER, "MUG"))
    world.catalog.put_offer(SELLER, "MUG", asin="B0CT000001", title="Mug", marketplace_id=US,
                            price=Decimal("8"), currency="USD", quantity=2, handling_time=1)
    mug = world.catalog.get(SELLER, "MUG")
    assert mug.listing_id != old_id and list(mug.marketplaces) == [US]


def test_inactive_offer_is_not_buyable(world):
    world.catalog.put_offer(SELLER, "MUG", asin="B0CT000001", title="Mug", marketplace_id=US,
                            price=Decimal("8"), currency="USD", quantity=2, handling_time=1,
                            status="INACTIVE")
    view = world.catalog.view(SELLER)["MUG"]["marketplaces"]
    assert view[US]["buyable"] is False and view[CA]["buyable"] is True


async def test_fba_stock_drifts_as_simulated_time_passes(autojump_clock):
    """FBA stock changes by itself over a day, and the same seed gives the same day."""
    async def one_day() -> dict:
        clock.set_start(datetime(2026, 5, 1, tzinfo=timezone.utc))
        world = make_world()
        before = world.now()
        await trio.sleep(24 * 3600)
        world.advance()
        offers = {o.sku: (o.fba.fulfillable, o.fba.unfulfillable, o.fba.updated)
                  for o in world.catalog.offers(SELLER) if o.is_fba}
        assert all(updated >= before for _, _, updated in offers.values())
        return offers

    first = await one_day()
    assert (first["SPORK"][:2], first["LAMP"][:2]) != ((60, 0), (30, 0))
    assert any(updated > datetime(2026, 5, 1, tzinfo=timezone.utc) for _, _, updated in
               first.values())
    second = await one_day()
    assert [v[:2] for v in first.values()] == [v[:2] for v in second.values()]


async def test_merchant_quantity_does_not_drift(autojump_clock):
    clock.set_start(datetime(2026, 5, 1, tzinfo=timezone.utc))
    world = make_world()
    await trio.sleep(3 * 24 * 3600)
    world.advance()
    assert world.catalog.get(SELLER, "MUG").quantity == 5


def test_view_of_an_unknown_seller_is_an_error(world):
    with pytest.raises(KeyError, match="unknown seller account"):
        world.catalog.view("NOBODY")


def test_timing_defaults_match_the_documented_amazon_values(world):
    timing = world.catalog.timing
    assert timing.document_url_ttl == timedelta(minutes=5)
    assert timing.fba_next_token_ttl == timedelta(seconds=30)
    assert (timing.listings_feed_limit, timing.listings_feed_window) == (5, timedelta(minutes=5))


async def test_handing_out_ids_does_not_change_the_drift(autojump_clock):
    """Ids and drift use separate seeded streams: API traffic cannot reshape the world."""
    async def day(ids: int) -> list[int]:
        clock.set_start(datetime(2026, 5, 1, tzinfo=timezone.utc))
        world = make_world()
        for _ in range(ids):
            world.catalog.new_id()
        await trio.sleep(24 * 3600)
        world.advance()
        return [o.fba.fulfillable for o in world.catalog.offers(SELLER) if o.is_fba]

    assert await day(0) == await day(25)
