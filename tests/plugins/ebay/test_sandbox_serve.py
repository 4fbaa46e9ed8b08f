"""``marketsync sandbox ebay``: the simulator on a real loopback port, beside Amazon's."""

from __future__ import annotations

import click
import httpx
import trio

from marketsync.plugins.amazon.cli import register as register_amazon
from marketsync.plugins.ebay.cli import register as register_ebay
from marketsync.plugins.ebay.sandbox.serve import serve


async def test_serves_the_scenario_on_a_free_loopback_port():
    printed: list[str] = []
    async with trio.open_nursery() as nursery:
        world = await nursery.start(lambda task_status: serve(
            "default", "127.0.0.1", 0, 1.0, out=printed.append, task_status=task_status))
        assert world.base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=world.base_url) as client:
            credentials = (await client.get("/_sandbox/credentials")).json()
            refused = await client.get("/sell/fulfillment/v1/order")
        nursery.cancel_scope.cancel()
    assert credentials["applications"][0]["ruName"] == "marketsync-sandbox-ru-name"
    assert refused.status_code == 401 and refused.json()["errors"][0]["errorId"] == 1001
    assert "refresh_token" in printed[0] and world.base_url in printed[0]


def test_both_channels_share_the_sandbox_group_in_either_order():
    for order in ((register_amazon, register_ebay), (register_ebay, register_amazon)):
        cli = click.Group("marketsync")
        for register in order:
            register(cli)
        assert set(cli.commands["sandbox"].commands) == {"serve", "ebay"}
