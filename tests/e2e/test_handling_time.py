"""Handling time per regional account (issue 11): what the integration wants reaches
Amazon after the product import, even for listings whose quantity did not change."""

from __future__ import annotations

import trio

from marketsync.core.domain import inventory, products

from .conftest import EU


async def test_the_product_import_pushes_a_differing_handling_time(make_daemon, world,
                                                                   e2e_clock):
    """KETTLE-1 shows 2 days at Amazon, the integration wants 1 (the default): after the
    product import it is pushed although its quantity did not change; MUG-1 too, once,
    since Amazon's report does not say what it holds. A second import pushes nothing."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    assert world.catalog.view(EU)["KETTLE-1"]["handlingTime"] == 2
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)
        view = world.catalog.view(EU)
        de = await daemon.store.read(products.integration_id, "amazon-de")
        again = await daemon.store.run(inventory.handling_times_due, de, 1)
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert view["KETTLE-1"]["handlingTime"] == 1 and view["MUG-1"]["handlingTime"] == 1
    assert again == 0
