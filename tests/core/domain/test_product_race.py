"""Two integrations of one account meet the same new SKU at the same moment.

On PostgreSQL two replicas (or two jobs of one daemon) import listing pages in parallel
transactions: both look for product ``MUG``, find none, and create it. The second insert
waits for the first transaction; when that commits, the second must find the product the
first made, not fail on ``uq_products_sku`` and lose its page. SQLite has one writer at a
time, so the race exists only on PostgreSQL.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text

from marketsync.core.domain import inventory, products
from marketsync.core.store import Store
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Listing, Product
from marketsync.core.types import ChannelListing

#: the pages as the SP-API simulator's listings report reads into them: the same seller
#: SKU and ASIN on both marketplaces, each with its own quantity
DE_PAGE = [ChannelListing(channel_sku="MUG", asin="B0MUG0001", title="Mug", quantity=6),
           ChannelListing(channel_sku="CUP", asin="B0CUP0001", title="Cup", quantity=2)]
FR_PAGE = [ChannelListing(channel_sku="MUG", asin="B0MUG0001", title="Tasse", quantity=6),
           ChannelListing(channel_sku="CUP", asin="B0CUP0001", title="Tasse", quantity=2)]


def _waiting_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()")).scalar_one() > 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_integrations_creating_one_product_at_once_share_it(store):
    de, fr = store.run_blocking(lambda session: tuple(
        ensure_integration(session, alias=alias, channel="amazon", account="acme",
                           marketplace=mp) for alias, mp in (("amazon-de", "DE"),
                                                             ("amazon-fr", "FR"))))
    first_inserted, let_first_commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first(session):
        products.apply_channel_listings(session, de, DE_PAGE)
        first_inserted.set()
        assert let_first_commit.wait(30), "the test never let the first import commit"

    def second(session):
        products.apply_channel_listings(session, fr, FR_PAGE)

    def worker(fn):
        try:
            store.run_blocking(fn)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    one = threading.Thread(target=worker, args=(first,))
    one.start()
    assert first_inserted.wait(30)
    two = threading.Thread(target=worker, args=(second,))
    two.start()
    # the second import is now blocked on the first one's uncommitted MUG
    deadline = time.monotonic() + 20
    while not _waiting_on_a_lock(store):
        assert time.monotonic() < deadline, "the second import never reached the clash"
        time.sleep(0.05)
    let_first_commit.set()
    one.join(30)
    two.join(30)
    assert not errors, errors

    def check(session):
        assert session.execute(select(func.count()).select_from(Product)).scalar_one() == 2
        mapped = dict(session.execute(
            select(Listing.integration_id, Product.sku)
            .join(Product, Product.id == Listing.product_id)
            .where(Listing.channel_sku == "MUG")).all())
        assert mapped == {de: "MUG", fr: "MUG"}
        # the opening stock came from the listings once, not once per racing import
        assert inventory.stock_level(session, "MUG").on_hand == 6
    store.read_blocking(check)
