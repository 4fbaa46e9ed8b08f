"""A listing Amazon refuses is not hammered: it waits longer after each refusal, and the
reason is where an operator looks (``status``, ``products list``, the status page)."""

from __future__ import annotations

import trio

from marketsync.core.domain import inventory, products

from marketsync.core.runtime import status

from .conftest import EU


async def test_a_listing_deleted_on_amazon_is_retried_with_growing_delays(
        make_daemon, world, e2e_clock):
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # first imports done
        world.catalog.delete(world.catalog.get(EU, "KETTLE-1"))
        patches_before = len(world.calls)

        await daemon.store.run(inventory.set_on_hand, "KETTLE-1", 77, note="stocktake")
        await daemon.store.run(inventory.set_on_hand, "MUG-1", 55, note="stocktake")
        daemon.stock_changed()
        await trio.sleep(600)

        kettle = [c for c in world.calls[patches_before:]
                  if c.operation == "patchListingsItem" and c.path.endswith("/KETTLE-1")]
        report = await daemon.store.read(status.collect)
        rows = await daemon.store.read(products.list_listings, "KETTLE-1")
        mugs = await daemon.store.read(products.list_listings, "MUG-1")
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    # refused at once, then after 60, 120 and 240 s: 4 tries in 10 minutes (it was ~300)
    assert 3 <= len(kettle) <= 5, len(kettle)
    # the other SKU of the same pushes is not held back
    (mug,) = [r for r in mugs if r["integration"] == "amazon-de" and r["channel_sku"] == "MUG-1"]
    assert mug["push_error"] is None and not mug["pending"]
    assert world.catalog.view(EU)["MUG-1"]["quantity"] == mug["wanted_quantity"]
    (de,) = report["integrations"]
    assert de["refused_pushes"] == 1 and de["pending_pushes"] >= 1
    (row,) = [r for r in rows if r["integration"] == "amazon-de"]
    assert row["push_error"] and row["push_retry_at"] is not None
    assert "refused by the channel" in status.render(report)
