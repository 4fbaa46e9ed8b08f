"""The stock master: ledger idempotency, what must be pushed, and acknowledgement by
generation so that a change made while a push is in flight is pushed again."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from marketsync.core.domain import inventory, products
from marketsync.core.store import submissions
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Listing, StockMovement
from marketsync.core.store.timing import pinned_now
from marketsync.core.types import (
    ChannelListing,
    ChannelStock,
    Fulfillment,
    ItemResult,
    Submission,
    SubmissionReport,
)


def world(session) -> tuple[int, int]:
    de = ensure_integration(session, alias="amazon-de", channel="amazon", account="acme",
                            marketplace="DE")
    fr = ensure_integration(session, alias="amazon-fr", channel="amazon", account="acme",
                            marketplace="FR")
    inventory.ensure_product(session, "MUG")
    inventory.set_on_hand(session, "MUG", 10)
    for integration in (de, fr):
        products.apply_channel_listings(session, integration, [
            ChannelListing(channel_sku="MUG", quantity=10),
            ChannelListing(channel_sku="MUG-FBA", fulfillment=Fulfillment.FBA, asin="B0MUG",
                           quantity=7)])
    return de, fr


def sent(session, integration, batch, channel_id="feed-1", results=(), poll_after=60.0):
    return inventory.record_stock_push(session, integration, batch, Submission(
        kind="stock", channel_id=channel_id, channel_skus=[u.channel_sku for u in batch.updates],
        results=tuple(results), poll_after=poll_after))


def finish(session, submission_id, *skus, accepted=True):
    results = [ItemResult(channel_sku=sku, accepted=accepted) for sku in skus]
    submissions.apply_report(session, submission_id, SubmissionReport(done=True,
                                                                       results=results))
    return inventory.apply_push_results(session, submission_id)


def test_movement_key_applies_once(store):
    """On both databases: the same key twice changes the stock once."""
    def work(session):
        product = inventory.ensure_product(session, "MUG")
        assert inventory.apply_movement(session, product.id, "manual:k1", reason="adjust",
                                        on_hand=5)
        assert not inventory.apply_movement(session, product.id, "manual:k1",
                                            reason="adjust", on_hand=5)
        assert inventory.stock_level(session, "MUG").on_hand == 5
        assert inventory.ledger_totals(session, product.id) == (5, 0)
        inventory.set_on_hand(session, "MUG", 3, key="count-1")
        inventory.set_on_hand(session, "MUG", 3, key="count-1")
        inventory.adjust(session, "MUG", -1, reason="broken", key="adj-1")
        inventory.adjust(session, "MUG", -1, reason="broken", key="adj-1")
        assert inventory.stock_level(session, "MUG").on_hand == 2
    store.run_blocking(work)


def test_push_acknowledges_only_the_generation_sent(store):
    """On both databases: a change while the push is in flight is pushed again after it."""
    def work(session):
        de, _ = world(session)
        inventory.set_on_hand(session, "MUG", 8)
        batch = inventory.pending_stock_updates(session, de)
        assert [(u.channel_sku, u.quantity) for u in batch.updates] == [("MUG", 8)]
        submission_id = sent(session, de, batch)
        # in flight: nothing more to send for MUG yet
        assert not inventory.pending_stock_updates(session, de)
        inventory.adjust(session, "MUG", -3, reason="breakage")
        assert not inventory.pending_stock_updates(session, de)
        assert finish(session, submission_id, "MUG") == ["MUG"]
        listing = session.execute(select(Listing).where(
            Listing.integration_id == de, Listing.channel_sku == "MUG")).scalar_one()
        assert listing.acknowledged_quantity == 8 and listing.wanted_quantity == 5
        again = inventory.pending_stock_updates(session, de)
        assert [(u.channel_sku, u.quantity) for u in again.updates] == [("MUG", 5)]
        assert finish(session, sent(session, de, again, "feed-2"), "MUG") == []
        assert not inventory.pending_stock_updates(session, de)
    store.run_blocking(work)


def test_every_mfn_listing_of_the_product_follows_availability(sqlite_store):
    def work(session):
        de, fr = world(session)
        assert not inventory.pending_stock_updates(session, de)  # channel already has 10
        assert inventory.pending_push_integrations(session) == []
        inventory.adjust(session, "MUG", -4, reason="sold at the market")
        assert inventory.pending_push_integrations(session) == [de, fr]
        for integration in (de, fr):
            batch = inventory.pending_stock_updates(session, integration)
            assert [(u.channel_sku, u.quantity, u.handling_time_days)
                    for u in batch.updates] == [("MUG", 6, 1)]
    sqlite_store.run_blocking(work)


def test_a_refused_sku_stays_pending_and_waits_longer_after_each_refusal(sqlite_store):
    """Refused (deleted on the channel, say): still pending, with the channel's reason, but
    not sent again for 60 s, then 120 s, ...; accepted at last, it is clean again."""
    start = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)

    def at(seconds: float):
        return pinned_now(start + timedelta(seconds=seconds))

    def work(session):
        de, _ = world(session)
        inventory.set_on_hand(session, "MUG", 2)
        with at(0):
            submission_id = sent(session, de, inventory.pending_stock_updates(session, de))
            assert finish(session, submission_id, "MUG", accepted=False) == ["MUG"]
        listing = session.execute(select(Listing).where(Listing.channel_sku == "MUG",
                                                        Listing.integration_id == de)).scalar_one()
        assert (listing.push_error, listing.push_refusals) == ("refused by the channel", 1)
        with at(59):
            assert not inventory.pending_stock_updates(session, de).updates
        with at(60):
            batch = inventory.pending_stock_updates(session, de)
            assert [u.quantity for u in batch.updates] == [2]
            submission_id = sent(session, de, batch, "feed-2")
            finish(session, submission_id, "MUG", accepted=False)
        with at(60 + 119):
            assert not inventory.pending_stock_updates(session, de).updates
        with at(60 + 120):
            submission_id = sent(session, de, inventory.pending_stock_updates(session, de), "feed-3")
            assert finish(session, submission_id, "MUG", accepted=True) == []
        assert (listing.push_error, listing.push_refusals, listing.push_retry_at) == (None, 0, None)
    sqlite_store.run_blocking(work)


def test_a_sku_missing_from_a_failed_feed_goes_out_with_the_next_push(sqlite_store):
    """A feed that failed as a whole (FATAL, stuck) refused nobody: no waiting."""
    def work(session):
        de, _ = world(session)
        inventory.set_on_hand(session, "MUG", 2)
        submission_id = sent(session, de, inventory.pending_stock_updates(session, de))
        submissions.apply_report(session, submission_id, SubmissionReport(
            done=True, failed_reason="feed 1 FATAL: no reason given"))
        assert inventory.apply_push_results(session, submission_id) == ["MUG"]
        assert [u.quantity for u in inventory.pending_stock_updates(session, de).updates] == [2]
    sqlite_store.run_blocking(work)


def test_synchronous_results_apply_at_once(sqlite_store):
    """A channel answering per SKU at once (poll_after=0) acknowledges in the same call."""
    def work(session):
        de, _ = world(session)
        inventory.set_on_hand(session, "MUG", 4)
        batch = inventory.pending_stock_updates(session, de)
        sent(session, de, batch, "sync-1", results=[ItemResult(channel_sku="MUG",
                                                               accepted=True)], poll_after=0)
        assert not inventory.pending_stock_updates(session, de)
        assert submissions.in_flight(session, de) == []
    sqlite_store.run_blocking(work)


def test_never_below_zero_and_handling_time_override(sqlite_store):
    def work(session):
        de, _ = world(session)
        inventory.set_on_hand(session, "MUG", 0)
        product = inventory.product_by_sku(session, "MUG")
        inventory.apply_movement(session, product.id, "order-item:x:reserve",
                                 reason="reserve", reserved=2)
        level = inventory.stock_level(session, "MUG")
        assert (level.available, level.short) == (0, 2)
        products.set_handling_time(session, "MUG", 4)
        batch = inventory.pending_stock_updates(session, de, default_handling_time_days=2)
        assert [(u.quantity, u.handling_time_days) for u in batch.updates] == [(0, 4)]
        products.set_handling_time(session, "MUG", None)
        batch = inventory.pending_stock_updates(session, de, default_handling_time_days=2)
        assert [(u.quantity, u.handling_time_days) for u in batch.updates] == [(0, 2)]
    sqlite_store.run_blocking(work)


def test_channel_side_edit_is_overwritten(sqlite_store):
    """Someone edits the quantity on the channel: the next import makes a push due."""
    def work(session):
        de, _ = world(session)
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="MUG",
                                                                     quantity=99)])
        assert [u.quantity for u in inventory.pending_stock_updates(session, de).updates] \
            == [10]
    sqlite_store.run_blocking(work)


def test_fba_is_imported_never_pushed_and_never_local(sqlite_store):
    def work(session):
        de, fr = world(session)
        products.apply_channel_stock(session, de, [
            ChannelStock(channel_sku="MUG-FBA", quantity=3),
            ChannelStock(channel_sku="NEW-FBA", quantity=2, asin="B0NEW")])
        inventory.adjust(session, "MUG", -1, reason="x")
        skus = {u.channel_sku for u in inventory.pending_stock_updates(session, de).updates}
        assert skus == {"MUG"}
        product = inventory.product_by_sku(session, "MUG")
        # MUG-FBA was mapped by ASIN? No: by SKU it is its own product unless ASINs match
        fba_product = session.execute(select(Listing.product_id).where(
            Listing.channel_sku == "MUG-FBA", Listing.integration_id == de)).scalar_one()
        assert inventory.fba_quantity(session, fba_product) == 3 + 7  # DE now 3, FR still 7
        assert inventory.stock_level(session, "MUG").on_hand == 9
        assert product.id != fba_product
        moved = session.execute(select(func.count(StockMovement.id)).where(
            StockMovement.product_id == fba_product)).scalar()
        assert moved == 0
    sqlite_store.run_blocking(work)


def test_unknown_sku_errors_name_it(sqlite_store):
    def work(session):
        with pytest.raises(inventory.UnknownSku, match="'GHOST'"):
            inventory.set_on_hand(session, "GHOST", 1)
        inventory.ensure_product(session, "MUG")
        with pytest.raises(ValueError, match="0 or more"):
            inventory.set_on_hand(session, "MUG", -1)
        with pytest.raises(ValueError, match="needs a reason"):
            inventory.adjust(session, "MUG", 1, reason=" ")
    sqlite_store.run_blocking(work)


@pytest.fixture
def sqlite_store(tmp_path, _sqlite_template):
    """A SQLite store of this test's own, copied from the migrated template."""
    from marketsync.core.store import Store

    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    db = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield db
    db.close()
