"""Scenario files and the world they generate: determinism, progression, validation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from marketsync.core.errors import ConfigError
from marketsync.plugins.amazon.sandbox import World, load_scenario
from marketsync.plugins.amazon.sandbox.scenario import SCENARIOS, parse_scenario

from .conftest import AU, DE, EU, FE, NA, SMALL_SCENARIO, START, UK, US, small_scenario


class FakeClock:
    """A hand-moved clock: the world is lazy, so moving it costs only what is asked."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def build(scenario=None, at: datetime = START) -> tuple[World, FakeClock]:
    fake = FakeClock(at)
    return World(scenario or small_scenario(), now=fake), fake


def fingerprint(world: World) -> list[tuple]:
    return [(o.order_id, o.seller_id, o.marketplace_id, o.fulfilled_by, o.created, o.events,
             [(i.sku, i.quantity, i.unit_price) for i in o.items]) for o in world.orders.values()]


def test_same_seed_and_start_give_the_same_world():
    """Advancing a day in one step or in 97 uneven steps yields the same orders and stock."""
    one, clock_one = build()
    many, clock_many = build()
    clock_one.at = START + timedelta(days=1)
    one.advance()
    for step in range(1, 97):
        clock_many.at = START + timedelta(minutes=15 * step - (step % 3))
        many.advance()
    clock_many.at = START + timedelta(days=1)
    many.advance()
    assert fingerprint(one) == fingerprint(many)
    assert len(one.orders) > 40
    assert one.catalog.view(NA) == many.catalog.view(NA)


def test_another_seed_gives_another_world():
    first, _ = build()
    other, _ = build(small_scenario(seed=99))
    assert fingerprint(first) != fingerprint(other)


def test_history_days_are_generated_at_start():
    world, _ = build()
    created = [o.created for o in world.orders.values()]
    assert created and min(created) >= START - timedelta(days=1) and max(created) <= START


def test_status_progression():
    """FBA orders ship by themselves; MFN orders wait for the seller; some are cancelled."""
    world, fake = build()
    fake.at = START + timedelta(days=3)
    world.advance()
    late = START + timedelta(days=2)  # orders old enough to have finished progressing
    old = [o for o in world.orders.values() if o.created < late - timedelta(days=1)]
    statuses = {(o.fulfilled_by, o.status_at(fake.at)) for o in old}
    assert ("AMAZON", "SHIPPED") in statuses and ("MERCHANT", "UNSHIPPED") in statuses
    assert ("MERCHANT", "SHIPPED") not in statuses
    assert any(status == "CANCELLED" for _, status in statuses)
    assert all(o.status_at(o.created) == "PENDING" for o in old)


def test_orders_take_stock_from_the_catalog():
    world, _ = build()
    sold = sum(i.quantity for o in world.orders.values() if o.seller_id == NA
               for i in o.items if i.sku == "MUG-1")
    assert sold > 0
    assert world.catalog.view(NA)["MUG-1"]["quantity"] == 50 - sold


def test_no_orders_without_stock():
    data = {**SMALL_SCENARIO, "catalog": [{**SMALL_SCENARIO["catalog"][0], "mfn_quantity": 0}]}
    world, _ = build(parse_scenario(data))
    assert world.orders == {}


def test_au_orders_go_to_the_fe_account():
    world, _ = build()
    au = [o for o in world.orders.values() if o.marketplace_id == AU]
    assert au and {o.seller_id for o in au} == {FE}


def test_channel_edits_change_the_catalog():
    world, fake = build(small_scenario(generator={"orders_per_day": {}, "channel_edits_per_day": 6}))
    before = world.catalog.view(NA)
    fake.at = START + timedelta(days=2)
    world.advance()
    assert world.catalog.view(NA) != before


def test_channel_edits_never_set_an_fba_quantity():
    """Seller Central edits MFN quantities only; FBA stock is Amazon's. (Edits that set it
    to 0–40 emptied the demo's FBA shelf, and its MCF order came back Invalid.)"""
    world, fake = build(small_scenario(generator={"orders_per_day": {},
                                                  "channel_edits_per_day": 200}))
    edits = []
    original = world.catalog.channel_edit

    def recording(seller_id, sku, **change):
        edits.append((sku, change))
        return original(seller_id, sku, **change)

    world.catalog.channel_edit = recording
    fake.at = START + timedelta(days=2)
    world.advance()
    quantity_edits = {sku for sku, change in edits if change.get("quantity") is not None}
    assert quantity_edits and "SPORK-FBA" not in quantity_edits
    assert any(sku == "SPORK-FBA" for sku, _ in edits)  # its edits are price edits


def test_shipped_scenarios_are_valid():
    default = load_scenario(SCENARIOS / "default.yaml")
    codes = {a.seller_id: a for a in default.accounts}
    assert len(codes) == 3 and [a.pii_access for a in default.accounts if AU in a.marketplace_ids] == [False]
    demo = load_scenario("demo")  # the demo: US, UK, DE and AU, AU without PII
    assert {m for a in demo.accounts for m in a.marketplace_ids} == {US, UK, DE, AU}
    assert [a.pii_access for a in demo.accounts if AU in a.marketplace_ids] == [False]


def test_every_problem_is_reported_at_once():
    data = {
        "applications": [{"client_id": "x"}],
        "accounts": [{"seller_id": "S", "region": "EU", "marketplaces": ["US", "XX"]}],
        "catalog": [{"sku": "A", "asin": "B", "title": "t", "prices": {"ZZ": 1}}],
        "generator": {"orders_per_day": {"QQ": 3}, "bogus": 1},
        "consent": {"seller_id": "nobody"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_scenario(data, source="bad.yaml")
    text = "\n".join(caught.value.errors)
    for fragment in ("client_secret", "region NA, not EU", "'XX'", "'ZZ'", "mfn_quantity or fba_quantity",
                     "'QQ'", "generator.bogus", "'nobody'"):
        assert fragment in text
    assert all(e.startswith("bad.yaml: ") for e in caught.value.errors)


def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: [unclosed")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_scenario(path)


def test_sellers_sharing_a_marketplace_share_its_orders_and_keep_their_own_catalogs():
    """A host of many shops: two EU sellers in UK and DE, each with its own SKUs (a
    catalog item names its sellers); the marketplace's orders are split between them and
    each order takes only its seller's offers."""
    second = "A4TESTEU2"
    data = {
        **SMALL_SCENARIO,
        "accounts": [*SMALL_SCENARIO["accounts"],
                     {"seller_id": second, "region": "EU", "marketplaces": ["UK", "DE"],
                      "refresh_tokens": ["Atzr|test-eu-2"]}],
        "catalog": [
            {"sku": "EU1-MUG", "asin": "B0EU1MUG", "title": "Mug", "mfn_quantity": 900,
             "prices": {"UK": "8.00", "DE": "9.00"}, "sellers": [EU]},
            {"sku": "EU2-CUP", "asin": "B0EU2CUP", "title": "Cup", "mfn_quantity": 900,
             "prices": {"UK": "6.00", "DE": "7.00"}, "sellers": [second]},
            {"sku": "EU2-FBA", "asin": "B0EU2FBA", "title": "Spork", "fba_quantity": 900,
             "prices": {"UK": "4.00"}, "sellers": [second]}],
        "generator": {"orders_per_day": {"UK": 60, "DE": 60}, "fba_share": 0.2},
    }
    world, clock_at = build(parse_scenario(data, source="tests:two-eu"))
    assert [o.sku for o in world.catalog.offers(EU)] == ["EU1-MUG"]
    assert sorted(o.sku for o in world.catalog.offers(second)) == ["EU2-CUP", "EU2-FBA"]
    assert world.catalog.offers(NA) == []  # an item naming sellers is nobody else's
    clock_at.at = START + timedelta(days=1)
    world.advance()
    by_seller: dict[str, set[str]] = {}
    for order in world.orders.values():
        by_seller.setdefault(order.seller_id, set()).update(i.sku for i in order.items)
    assert by_seller[EU] <= {"EU1-MUG"} and by_seller[second] <= {"EU2-CUP", "EU2-FBA"}
    counts = {seller: sum(1 for o in world.orders.values() if o.seller_id == seller)
              for seller in (EU, second)}
    assert min(counts.values()) > 0.25 * sum(counts.values()), counts


def test_a_catalog_item_naming_an_unknown_seller_is_refused():
    data = {**SMALL_SCENARIO, "catalog": [
        {"sku": "A", "asin": "B", "title": "t", "mfn_quantity": 1, "prices": {"US": 1},
         "sellers": ["A9NOBODY"]}]}
    with pytest.raises(ConfigError, match=r"catalog\[0\]\.sellers: A9NOBODY not among"):
        parse_scenario(data, source="bad.yaml")


def test_a_quiet_shop_places_no_orders_edits_or_fba_moves_after_quiet_from():
    quiet = START + timedelta(hours=6)
    world, clock_at = build(small_scenario(generator={
        **SMALL_SCENARIO["generator"], "channel_edits_per_day": 24,
        "quiet_from": quiet.isoformat().replace("+00:00", "Z")}))
    clock_at.at = quiet
    world.advance()
    placed, stock = len(world.orders), world.catalog.view(NA)
    assert any(o.created >= START for o in world.orders.values())  # busy until then
    clock_at.at = quiet + timedelta(days=2)
    world.advance()
    assert len(world.orders) == placed
    assert world.catalog.view(NA) == stock  # FBA drift and edits stopped too
    with pytest.raises(ConfigError, match="generator.quiet_from"):
        small_scenario(generator={"quiet_from": "soon"})
