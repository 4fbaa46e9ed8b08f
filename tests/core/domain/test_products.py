"""Products and listings: automatic mapping, manual overrides, off-channel, prices."""

from __future__ import annotations

import shutil

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketsync.core.domain import inventory, products
from marketsync.core.store import Store, submissions
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Listing, Product, SubmissionRow
from marketsync.core.store.timing import pinned_now, transaction_now
from marketsync.core.types import (
    ChannelListing,
    Fulfillment,
    ItemResult,
    Money,
    Submission,
    SubmissionReport,
)


@pytest.fixture
def sqlite_store(tmp_path, _sqlite_template):
    """A SQLite store of this test's own, copied from the migrated template."""
    from marketsync.core.store import Store

    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    db = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield db
    db.close()


def integrations(session) -> tuple[int, int]:
    return tuple(ensure_integration(session, alias=alias, channel="amazon", account="acme",
                                    marketplace=mp)
                 for alias, mp in (("amazon-de", "DE"), ("amazon-fr", "FR")))


def listing(session, integration, sku) -> Listing:
    return session.execute(select(Listing).where(Listing.integration_id == integration,
                                                 Listing.channel_sku == sku)).scalar_one()


def sku_of(session, integration, channel_sku) -> str | None:
    product_id = listing(session, integration, channel_sku).product_id
    return session.get(Product, product_id).sku if product_id else None


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def test_mapping_same_sku_then_asin_then_ean(store):
    """On both databases: one product per article across integrations."""
    def work(session):
        de, fr = integrations(session)
        products.apply_channel_listings(session, de, [
            ChannelListing(channel_sku="MUG", asin="B0MUG", ean="4000000000001", quantity=6)])
        products.apply_channel_listings(session, fr, [
            ChannelListing(channel_sku="MUG", quantity=2),
            ChannelListing(channel_sku="FR-MUG-ASIN", asin="B0MUG"),
            ChannelListing(channel_sku="FR-MUG-EAN", ean="4000000000001"),
            ChannelListing(channel_sku="CUP", asin="B0CUP", quantity=3)])
        assert {sku_of(session, fr, s) for s in ("MUG", "FR-MUG-ASIN", "FR-MUG-EAN")} == {"MUG"}
        assert sku_of(session, fr, "CUP") == "CUP"
        # the new product took its stock from the first channel that listed it, once
        assert inventory.stock_level(session, "MUG").on_hand == 6
        assert inventory.stock_level(session, "CUP").on_hand == 3
        products.apply_channel_listings(session, fr, [ChannelListing(channel_sku="CUP",
                                                                     quantity=3)])
        assert inventory.stock_level(session, "CUP").on_hand == 3
    store.run_blocking(work)


def test_manual_map_and_unmap_stick_across_imports(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        inventory.ensure_product(session, "MUG")
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="X-1")])
        assert sku_of(session, de, "X-1") == "X-1"
        products.map_listing(session, de, "X-1", "MUG")
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="X-1")])
        assert sku_of(session, de, "X-1") == "MUG"
        products.unmap_listing(session, de, "X-1")
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="X-1")])
        assert sku_of(session, de, "X-1") is None
        with pytest.raises(inventory.UnknownSku):
            products.map_listing(session, de, "X-1", "NOPE")
        with pytest.raises(products.UnknownListing, match="'Y'"):
            products.unmap_listing(session, de, "Y")
    sqlite_store.run_blocking(work)


def test_deleted_on_channel_marks_off_channel_and_keeps_rows(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [
            ChannelListing(channel_sku="A", quantity=1), ChannelListing(channel_sku="B"),
            ChannelListing(channel_sku="C")])
        products.apply_channel_listings(session, de, [
            ChannelListing(channel_sku="A", status="Deleted")])
        assert not listing(session, de, "A").on_channel
        # a complete snapshot without C: C is gone too; B is still there
        counts = products.apply_channel_listings(session, de, [ChannelListing(channel_sku="B")],
                                                 complete=True)
        assert counts["off_channel"] == 1
        assert [listing(session, de, s).on_channel for s in "ABC"] == [False, True, False]
        assert inventory.stock_level(session, "A").on_hand == 1  # nothing deleted locally
        inventory.adjust(session, "A", 1, reason="x")
        assert "A" not in {u.channel_sku for u in
                           inventory.pending_stock_updates(session, de).updates}
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="A")])
        assert listing(session, de, "A").on_channel
    sqlite_store.run_blocking(work)


def test_complete_snapshot_over_pages(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku=s)
                                                      for s in "ABC"])
        started = transaction_now() + timedelta(microseconds=1)
        return de, started
    de, started = sqlite_store.run_blocking(work)

    def pages(session):
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="A")])
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="B")],
                                        complete=True, snapshot_started=started)
        return [listing(session, de, s).on_channel for s in "ABC"]
    assert sqlite_store.run_blocking(pages) == [True, True, False]


def test_deleted_locally_comes_back_with_the_import(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="MUG")])
        products.delete_product(session, "MUG")
        assert [l.sku for l in inventory.stock_levels(session)] == []
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="MUG")])
        assert [l.sku for l in inventory.stock_levels(session)] == ["MUG"]
    sqlite_store.run_blocking(work)


def stock_push(session, integration, channel_id="s-1"):
    """What the push_stock job sends now, recorded as sent (a feed: results come later)."""
    batch = inventory.pending_stock_updates(session, integration)
    inventory.record_stock_push(session, integration, batch, Submission(
        kind="stock", channel_id=channel_id, channel_skus=[u.channel_sku for u in batch.updates],
        poll_after=30))
    submission_id = session.execute(select(func.max(SubmissionRow.id))).scalar_one()
    return batch, submission_id


def finish(session, submission_id, sku, accepted=True, message=None):
    submissions.apply_report(session, submission_id, SubmissionReport(
        done=True, results=[ItemResult(channel_sku=sku, accepted=accepted, message=message)]))
    return products.apply_submission_results(session, submission_id)


def test_prices_come_back_and_local_prices_ride_with_the_stock(sqlite_store):
    """A merchant-fulfilled listing's price goes out in its stock push (one message with
    quantity and handling time), asked for at once; push_prices is left with nothing."""
    def work(session):
        de, fr = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG", price=eur("9.99"), quantity=6)])
        assert listing(session, de, "MUG").price == Decimal("9.99")
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG", price=eur("10.49"), quantity=6)])
        assert listing(session, de, "MUG").price == Decimal("10.49")
        assert not inventory.pending_stock_updates(session, de)
        products.set_price(session, "MUG", Decimal("12.5"), de)
        assert products.pending_price_updates(session, de) == []
        batch, submission_id = stock_push(session, de)
        assert [(u.channel_sku, u.quantity, u.price) for u in batch.updates] \
            == [("MUG", 6, eur("12.50"))]
        assert not inventory.pending_stock_updates(session, de)  # in flight
        # the import still shows the old price while ours is on its way: ours stays
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG", price=eur("10.49"), quantity=6)])
        assert listing(session, de, "MUG").wanted_price == Decimal("12.50")
        assert finish(session, submission_id, "MUG") == []
        row = listing(session, de, "MUG")
        assert (row.price, row.acknowledged_price) == (Decimal("12.50"), Decimal("12.50"))
        assert not inventory.pending_stock_updates(session, de)
        with pytest.raises(products.UnknownListing):
            products.set_price(session, "MUG", Decimal("1"), fr)
        with pytest.raises(ValueError, match="above zero"):
            products.set_price(session, "MUG", Decimal("0"), de)
    sqlite_store.run_blocking(work)


def test_an_fba_price_still_goes_through_push_prices(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG-FBA", fulfillment=Fulfillment.FBA, price=eur("9.99"))])
        products.set_price(session, "MUG-FBA", Decimal("11"), de)
        assert not inventory.pending_stock_updates(session, de)
        updates = products.pending_price_updates(session, de)
        assert [(u.channel_sku, u.price) for u in updates] == [("MUG-FBA", eur("11.00"))]
        submission_id = products.record_price_push(session, de, updates, Submission(
            kind="prices", channel_id="p-1", channel_skus=["MUG-FBA"], poll_after=30))
        products.set_price(session, "MUG-FBA", Decimal("12"), de)
        assert finish(session, submission_id, "MUG-FBA") == ["MUG-FBA"]
        assert [u.price.amount for u in products.pending_price_updates(session, de)] \
            == [Decimal("12.00")]
    sqlite_store.run_blocking(work)


def test_price_set_again_while_in_flight_is_pushed_again(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG", price=eur("9.99"), quantity=3)])
        products.set_price(session, "MUG", Decimal("11"), de)
        _, submission_id = stock_push(session, de)
        products.set_price(session, "MUG", Decimal("12"), de)
        assert finish(session, submission_id, "MUG") == ["MUG"]
        assert [u.price.amount for u in inventory.pending_stock_updates(session, de).updates] \
            == [Decimal("12.00")]
    sqlite_store.run_blocking(work)


def test_a_refused_price_waits_and_does_not_hold_back_the_stock(sqlite_store):
    """Amazon refuses the message carrying 0.50 (below the listing's minimum, say): the
    reason is kept on the price, which waits 60 s; the quantity goes again at once alone."""
    start = transaction_now()

    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG", price=eur("9.99"), quantity=5)])
        products.set_price(session, "MUG", Decimal("0.50"), de)
        with pinned_now(start):
            inventory.set_on_hand(session, "MUG", 4)
            batch, submission_id = stock_push(session, de)
            assert [(u.quantity, u.price) for u in batch.updates] == [(4, eur("0.50"))]
            assert finish(session, submission_id, "MUG", accepted=False,
                          message="8541: price below the minimum") == ["MUG"]
        row = listing(session, de, "MUG")
        assert (row.price_error, row.price_refusals) == ("8541: price below the minimum", 1)
        assert row.push_error is None and row.push_retry_at is None  # stock is another matter
        with pinned_now(start + timedelta(seconds=1)):
            assert [(u.quantity, u.price) for u in
                    inventory.pending_stock_updates(session, de).updates] == [(4, None)]
        with pinned_now(start + timedelta(seconds=60)):
            assert [(u.quantity, u.price) for u in
                    inventory.pending_stock_updates(session, de).updates] == [(4, eur("0.50"))]
    sqlite_store.run_blocking(work)


def test_fba_listing_never_gets_a_wanted_quantity(sqlite_store):
    def work(session):
        de, _ = integrations(session)
        products.apply_channel_listings(session, de, [ChannelListing(
            channel_sku="MUG-FBA", fulfillment=Fulfillment.FBA, quantity=5)])
        row = listing(session, de, "MUG-FBA")
        assert row.wanted_quantity is None and row.channel_quantity == 5
        assert inventory.stock_level(session, "MUG-FBA").on_hand == 0
        assert not inventory.pending_stock_updates(session, de)
    sqlite_store.run_blocking(work)


def test_handling_time_validation(sqlite_store):
    def work(session):
        inventory.ensure_product(session, "MUG")
        with pytest.raises(ValueError, match="0 to 30"):
            products.set_handling_time(session, "MUG", 31)
        with pytest.raises(products.UnknownIntegrationAlias, match="'nope'"):
            products.integration_id(session, "nope")
    sqlite_store.run_blocking(work)
