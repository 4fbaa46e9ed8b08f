"""What an operator sees of stock the daemon will not simply send (issue 11), on data as
the simulator sends it: the held first push listing by listing on the status page, and
the products whose count fell below their open orders (SHORT) in ``status``, on the page
and in /metrics.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from marketsync.core.domain import inventory, push_guard
from marketsync.core.runtime import status
from marketsync.core.web.server import create_web_app

from ..core.web.test_guard import client_for
from .test_first_connect import (  # noqa: F401 - scenario_changes is a fixture
    ALIASES, INTEGRATIONS, connected, no_more_sales, quantities, scenario_changes, sync)


async def imported(daemon) -> None:
    await connected(daemon)
    for alias in ALIASES:
        await sync(daemon, alias, "import_products")
    for alias in ALIASES:
        await sync(daemon, alias, "import_orders")


async def page_and_metrics(daemon) -> tuple[str, dict]:
    async with client_for(create_web_app(daemon)) as client:
        page = (await client.get("/")).text
        metrics = (await client.get("/metrics")).text
    return page, {f.name: f for f in text_string_to_metric_families(metrics)}


def card(page: str, alias: str) -> str:
    return page.split(f"data-alias='{alias}'")[1].split("</article>")[0]


async def test_the_page_lists_the_held_first_push_listing_by_listing(
        make_daemon, world, e2e_clock, monkeypatch):
    """A new connection under review with three counted products: each integration's
    card lists SKU, marketplace, Amazon's quantity now and what would be sent; past the
    bound it says how many more and which command lists them all."""
    no_more_sales(world)
    before = quantities(world)
    daemon = make_daemon(integrations=INTEGRATIONS, review=True)
    await imported(daemon)
    counts = {"KETTLE-1L": 7, "LAMP-LED": 100, "MUG-RED": 3}
    for sku, count in counts.items():
        await daemon.store.run(inventory.set_on_hand, sku, count, note="stocktake")
    for alias in ALIASES:
        await sync(daemon, alias, "push_stock")
    assert quantities(world) == before  # held: the review lets no change through
    levels = {level.sku: level for level in await daemon.store.read(inventory.stock_levels)}

    monkeypatch.setattr(status, "SHOWN", 2)
    page, _ = await page_and_metrics(daemon)
    us = card(page, "amazon-us")
    assert "pushes held: review" in us
    assert "<table class='held-plan' data-count='3'>" in us
    rows = re.findall(r"<tr class='planned'><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>"
                      r"<td>([^<]+)</td></tr>", us)
    # SKUs in order, the first two of three; Amazon's figure and the available count
    assert rows == [(sku, "US", str(before[sku]), str(levels[sku].available))
                    for sku in ("KETTLE-1L", "LAMP-LED")]
    assert "… and 1 more: <code>marketsync stock plan amazon-us</code> lists all" in us
    assert "marketplace</th>" in card(page, "amazon-ca") and ">CA</td>" in card(page, "amazon-ca")
    text = status.render(await daemon.store.read(status.collect))
    assert "… and 1 more (`marketsync stock plan amazon-us` lists all)" in text

    # the bound is the page's alone: the plan itself has all three, and accept sends them
    plan = await daemon.store.read(push_guard.plan, "amazon-us")
    assert [c.channel_sku for c in plan.changes] == ["KETTLE-1L", "LAMP-LED", "MUG-RED"]
    for alias in ALIASES:
        await daemon.store.run(push_guard.accept, alias)
        await sync(daemon, alias, "push_stock")
    page, _ = await page_and_metrics(daemon)
    assert "held-plan" not in page
    assert {sku: quantities(world)[sku] for sku in counts} == {
        sku: levels[sku].available for sku in counts}


async def test_a_count_below_the_open_orders_is_flagged_everywhere(make_daemon, world, e2e_clock):
    """A stocktake counts fewer units than the shop's unshipped orders hold: Amazon is
    offered 0 (never a negative figure), and ``status``, the page and the gauge name the
    product until the count is corrected."""
    no_more_sales(world)
    daemon = make_daemon(integrations=INTEGRATIONS)
    await imported(daemon)
    levels = {level.sku: level for level in await daemon.store.read(inventory.stock_levels)}
    sku, reserved = max(((level.sku, level.reserved) for level in levels.values()),
                        key=lambda pair: pair[1])
    assert reserved >= 2, "the scenario must leave open orders on some product"
    page, metrics = await page_and_metrics(daemon)
    assert "<p id='short' data-count='0'" in page
    assert metrics["marketsync_products_short"].samples[0].value == 0

    await daemon.store.run(inventory.set_on_hand, sku, reserved - 2, note="stocktake")
    for alias in ALIASES:
        await sync(daemon, alias, "push_stock")
    assert quantities(world)[sku] == 0
    text = status.render(await daemon.store.read(status.collect))
    assert (f"SHORT: 1 product(s) with open orders beyond on hand (channels get 0): {sku} "
            f"(on hand {reserved - 2}, reserved {reserved})") in text
    page, metrics = await page_and_metrics(daemon)
    assert "<section id='short' data-count='1'>" in page
    assert (f"<tr class='short-product'><td>{sku}</td><td>{reserved - 2}</td>"
            f"<td>{reserved}</td><td><b>SHORT 2</b></td></tr>") in page
    assert metrics["marketsync_products_short"].samples[0].value == 1

    await daemon.store.run(inventory.set_on_hand, sku, reserved + 1, note="recount")
    page, metrics = await page_and_metrics(daemon)
    assert "SHORT" not in status.render(await daemon.store.read(status.collect))
    assert "<p id='short' data-count='0'" in page
    assert metrics["marketsync_products_short"].samples[0].value == 0
