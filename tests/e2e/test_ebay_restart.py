"""eBay's revisions per listing and day survive a restart of the daemon.

eBay refuses a listing's 251st revision of a (Pacific) day. The plugin counts its own
revisions and holds a push that would pass its budget; the count lives in the core's
plugin state, so a new daemon on the same database goes on from the day's count instead
of starting again at zero. The budget is lowered to keep the test short.
"""

from __future__ import annotations

import httpx
import trio
from sqlalchemy import select

from marketsync.core.config.schema import parse_config
from marketsync.core.domain import inventory
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.store import Store
from marketsync.core.store.models import Listing
from marketsync.plugins.ebay import push
from marketsync.plugins.ebay.sandbox import World as EbayWorld
from marketsync.plugins.ebay.sandbox import create_app as ebay_app
from marketsync.plugins.ebay.sandbox import parse_scenario as ebay_scenario

from .conftest import ENV
from .test_ebay_with_amazon import ALL, EBAY_REFRESH, EBAY_SCENARIO, EBAY_SECRET, config_text

SELLER = "e2e-ebay-seller"


def ebay_daemon(ebay: EbayWorld, url: str, tmp_path) -> Daemon:
    plugins = plugin_loading.build(
        builtin=(*plugin_loading.DEFAULT_PLUGINS, "marketsync.plugins.ebay"),
        load_entry_points=False)
    config = parse_config(config_text((ALL[3],)), plugins.infos(),
                          filename=str(tmp_path / "m.yaml"),
                          environ={**ENV, "E2E_EBAY_SECRET": EBAY_SECRET,
                                   "E2E_EBAY_REFRESH": EBAY_REFRESH})
    app = ebay_app(ebay)
    return Daemon(config, plugins=plugins, store=Store(url),
                  transport_factory=lambda account: httpx.ASGITransport(app=app))


async def change_stock(daemon: Daemon, quantities) -> None:
    """A stock count every few minutes, each pushed on its own."""
    for quantity in quantities:
        await daemon.store.run(inventory.set_on_hand, "MUG-1", quantity, note="count")
        daemon.stock_changed()
        await trio.sleep(300)


async def test_a_restarted_daemon_holds_a_listing_at_the_days_revision_budget(
        world, tmp_path, monkeypatch, e2e_clock):
    monkeypatch.setattr(push, "REVISION_LIMIT", 6)
    monkeypatch.setattr(push, "REVISION_RESERVE", 1)  # a budget of 5 a day
    ebay = EbayWorld(ebay_scenario(EBAY_SCENARIO, source="tests:e2e-ebay"),
                     base_url="http://ebay-sandbox.local")
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    listing_id = ebay.offers[SELLER]["MUG-1"].listing_id

    def revisions_today() -> int:
        return ebay.revisions.get((listing_id, ebay.day()), 0)

    first = ebay_daemon(ebay, url, tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.serve)
        await trio.sleep(1800)  # products imported, the first figure pushed
        await change_stock(first, (30, 29, 28))
        await first.stop(grace=1)
        nursery.cancel_scope.cancel()
    before_restart = revisions_today()
    assert 3 <= before_restart <= 5, before_restart
    day = ebay.day()

    second = ebay_daemon(ebay, url, tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(second.serve)
        await trio.sleep(600)
        await change_stock(second, (27, 26, 25, 24, 23))
        error = await second.store.read(lambda s: s.execute(
            select(Listing.push_error).where(Listing.channel_sku == "MUG-1")).scalar_one())
        await second.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert ebay.day() == day  # all within one Pacific day
    # the plugin counts every revision it sends (eBay does not count a call that changes
    # nothing, so its own count may be lower): five sent in the day, not 3 + 5
    sent = [c for c in ebay.calls if c.operation == "bulkUpdatePriceQuantity"]
    assert len(sent) == 5 and revisions_today() <= 5
    assert error is not None and "held" in error and "5 revisions" in error
    assert ebay.offers[SELLER]["MUG-1"].available != 23  # the last counts wait for tomorrow
