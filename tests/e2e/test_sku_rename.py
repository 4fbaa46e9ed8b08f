"""A listing renamed on the channel stays the same listing locally (issue 7)."""

from __future__ import annotations

import logging

import trio
from sqlalchemy import func, select

from marketsync.core.runtime import jobs
from marketsync.core.store.models import Listing, Product

from .conftest import EU


async def test_a_sku_renamed_on_amazon_keeps_its_listing_product_and_history(
        make_daemon, world, e2e_clock, caplog):
    """MUG-1 becomes MUG-1-NEW between two product imports: same listing row (now under
    the new SKU), same product, no duplicate, and the change is logged."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)

        def snapshot(session):
            listings = {l.channel_sku: (l.id, l.product_id) for l in session.execute(
                select(Listing).where(Listing.integration_id == daemon.integration_ids["amazon-de"])
            ).scalars()}
            products = session.execute(select(func.count()).select_from(Product)).scalar()
            return listings, products

        before, products_before = await daemon.store.read(snapshot)
        world.catalog.rename_sku(EU, "MUG-1", "MUG-1-NEW")
        integration = daemon.integrations["amazon-de"]
        hooks = daemon.plugins.channel("amazon")
        with caplog.at_level(logging.INFO, logger="marketsync.core.domain.products"):
            for _ in range(5):  # a report: requested, then followed until done
                await jobs.run(daemon, integration, hooks, "import_products")
                await trio.sleep(120)
        after, products_after = await daemon.store.read(snapshot)
        nursery.cancel_scope.cancel()
    assert "MUG-1" in before and "MUG-1" not in after
    assert after["MUG-1-NEW"] == before["MUG-1"]  # same listing id, same product
    assert products_after == products_before
    assert "is now shown as MUG-1-NEW" in caplog.text
