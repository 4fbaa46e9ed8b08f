"""``marketsync notifications subscribe|unsubscribe`` against the simulator: a grantless
token for the destination, the seller's for the subscriptions, idempotent both ways."""

from __future__ import annotations

import httpx

from marketsync.core.cli import oneshot
from marketsync.core.config.schema import parse_config
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.store import Store
from marketsync.plugins.amazon.sandbox import create_app

from .conftest import ENV, EU, config_text

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/marketsync-eu"


def daemon_with_queue(world, plugins, tmp_path) -> Daemon:
    text = config_text([("amazon-de", "eu", "DE"), ("amazon-uk", "eu", "UK")]).replace(
        "  eu:\n    channel: amazon\n",
        "  eu:\n    channel: amazon\n    notifications:\n"
        f"      queue_url: {QUEUE}\n      access_key_id: ${{E2E_SECRET}}\n"
        "      secret_access_key: ${E2E_SECRET}\n", 1)
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "m.yaml"), environ=ENV)
    app = create_app(world)
    return Daemon(config, plugins=plugins, store=Store(f"sqlite:///{tmp_path / 'm.db'}"),
                  transport_factory=lambda account: httpx.ASGITransport(app=app))


async def test_subscribe_then_unsubscribe(world, plugins, tmp_path, e2e_clock):
    daemon = daemon_with_queue(world, plugins, tmp_path)
    lines = await oneshot.notifications(daemon, "eu", "subscribe")
    assert lines[0] == ("destination " + next(iter(world.notifications.destinations))
                        + " created for arn:aws:sqs:eu-west-1:123456789012:marketsync-eu")
    assert "ORDER_CHANGE: subscribed" in " ".join(lines)
    assert {kind for seller, kind in world.notifications.subscriptions if seller == EU} == {
        "ORDER_CHANGE", "FBA_INVENTORY_AVAILABILITY_CHANGES", "FULFILLMENT_ORDER_STATUS",
        "FEED_PROCESSING_FINISHED", "REPORT_PROCESSING_FINISHED"}
    again = await oneshot.notifications(daemon, "eu", "subscribe")
    assert "already there" in again[0] and "ORDER_CHANGE: already subscribed" in again
    assert len(world.notifications.destinations) == 1
    grantless = [c for c in world.calls if c.operation in ("getDestinations", "createDestination")]
    assert grantless and all(c.seller_id is None and c.status == 200 for c in grantless)
    gone = await oneshot.notifications(daemon, "eu", "unsubscribe")
    assert all(line.split(": ")[1].startswith("unsubscribed") for line in gone)
    assert not world.notifications.subscriptions
    assert "ORDER_CHANGE: not subscribed" in await oneshot.notifications(daemon, "eu", "unsubscribe")
    for integration in daemon.integrations.values():
        await integration.http.aclose()
