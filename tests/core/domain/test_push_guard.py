"""The review of a new connection and the safety valve: what a push may send, and the
seller's plan/accept."""

from __future__ import annotations

import pytest

from marketsync.core.domain import inventory, products, push_guard
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.types import ChannelListing

LIMITS = push_guard.ValveLimits()
SKUS = [f"SKU-{n}" for n in range(10)]


def shop(session, quantity: int = 10) -> int:
    """A connected integration with ten listings of ``quantity`` each, all acknowledged."""
    de = ensure_integration(session, alias="amazon-de", channel="amazon", account="eu",
                            marketplace="DE")
    products.apply_channel_listings(session, de, [
        ChannelListing(channel_sku=sku, quantity=quantity) for sku in SKUS])
    return de


def next_push(session, integration: int, *, review: bool = True) -> push_guard.Screened:
    batch = inventory.pending_stock_updates(session, integration)
    return push_guard.screen(session, integration, batch, review=review, limits=LIMITS)


def sent(screened: push_guard.Screened) -> dict[str, int]:
    return {u.channel_sku: u.quantity for u in screened.batch.updates}


def test_a_new_integration_holds_quantity_changes_until_accepted(store):
    def work(session):
        de = shop(session)
        inventory.set_on_hand(session, "SKU-1", 4, note="count")
        inventory.set_on_hand(session, "SKU-2", 12, note="count")
        products.set_handling_time(session, "SKU-3", 5)  # the quantity stays: may go
        screened = next_push(session, de)
        assert sent(screened) == {"SKU-3": 10} and screened.held == 2
        plan = push_guard.plan(session, "amazon-de")
        assert plan.holds == {"amazon-de": ("review", None)}
        assert [(c.channel_sku, c.channel_quantity, c.wanted_quantity)
                for c in plan.changes] == [("SKU-1", 10, 4), ("SKU-2", 10, 12)]
        assert push_guard.accept(session, "amazon-de") == "review"
        assert set(sent(next_push(session, de))) == {"SKU-1", "SKU-2", "SKU-3"}
        assert push_guard.accept(session, "amazon-de") is None  # nothing held any more
    store.run_blocking(work)


def test_review_off_sends_everything(store):
    def work(session):
        de = shop(session)
        inventory.set_on_hand(session, "SKU-1", 4, note="count")
        assert sent(next_push(session, de, review=False)) == {"SKU-1": 4}
        assert push_guard.plan(session).holds == {"amazon-de": (None, None)}
    store.run_blocking(work)


def test_the_valve_holds_a_mass_zeroing_until_accepted(store):
    """Six of ten listings to 0 at once: nothing goes, the reason is kept; after accept
    the same push goes whole."""
    def work(session):
        de = shop(session)
        push_guard.accept(session, "amazon-de")
        assert next_push(session, de).batch.updates == ()  # releases: nothing pending
        for sku in SKUS[:6]:
            inventory.set_on_hand(session, sku, 0, note="wrong file")
        screened = next_push(session, de)
        assert screened.batch.updates == () and screened.held == 6
        assert screened.tripped == "6 of 10 listings with stock would go to 0 at once (limit 50%)"
        hold, reason = push_guard.plan(session, "amazon-de").holds["amazon-de"]
        assert hold == "valve" and reason == screened.tripped
        assert next_push(session, de).tripped is None  # held, not tripped again
        assert push_guard.accept(session, "amazon-de") == "valve"
        assert sent(next_push(session, de)) == {sku: 0 for sku in SKUS[:6]}
    store.run_blocking(work)


def test_the_valve_holds_a_large_cut_of_the_total(store):
    def work(session):
        de = shop(session, quantity=10)
        push_guard.accept(session, "amazon-de")
        next_push(session, de)
        for sku in SKUS:
            inventory.set_on_hand(session, sku, 4, note="recount")  # 100 -> 40
        assert next_push(session, de).tripped == (
            "the listed quantity would fall from 100 to 40 at once (limit 50% less)")
    store.run_blocking(work)


@pytest.mark.parametrize("zeroed", [1, 2])
def test_normal_selling_does_not_trip_it(store, zeroed):
    """A few listings selling out, and ordinary sales, are no reason to hold anything."""
    def work(session):
        de = shop(session, quantity=3)
        push_guard.accept(session, "amazon-de")
        next_push(session, de)
        for sku in SKUS[:zeroed]:
            inventory.set_on_hand(session, sku, 0, note="sold out")
        inventory.set_on_hand(session, "SKU-9", 2, note="sold one")
        screened = next_push(session, de)
        assert screened.tripped is None and len(screened.batch.updates) == zeroed + 1
    store.run_blocking(work)


def test_unknown_alias_is_named(store):
    with pytest.raises(push_guard.UnknownAlias, match="'nope'"):
        store.run_blocking(push_guard.accept, "nope")
