"""Notifications end to end, on real sockets and the real clock: the simulator served on a
loopback port publishes to a real SQS-protocol server (moto), the daemon subscribes its
queue through the Notifications API, consumes it and stores the announced order with one
``getOrder`` — no mock between the two ends.

The world runs with a data lag of a second or two so that an order is announced within
the test's few real seconds; everything else is as in production.
"""

from __future__ import annotations

import json
import logging

import httpx
import trio
from hypercorn.config import Config as ServerConfig
from hypercorn.trio import serve as hypercorn_serve
from sqlalchemy import select

from marketsync.core.cli import oneshot
from marketsync.core.config.schema import parse_config
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.store import Store
from marketsync.core.store.models import NotificationSeen, Order
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.notifications import deliver_forever

from ..core.runtime import sqs_server
from .conftest import ENV, EU, SANDBOX, config_text, scenario

import pytest


@pytest.fixture(scope="module")
def sqs_endpoint():
    url, process = sqs_server.start_moto()
    yield url
    if process is not None:
        process.kill()
        process.wait()


async def until(condition, seconds: float = 30.0, every: float = 0.1) -> None:
    with trio.fail_after(seconds):
        while not await condition():
            await trio.sleep(every)


async def test_an_announced_order_is_fetched_alone_and_stored(tmp_path, plugins, sqs_endpoint,
                                                              caplog):
    queue_url = sqs_server.new_queue(sqs_endpoint)
    world = World(scenario(history_days=0, data_lag_seconds=[1, 2],
                           generator={"orders_per_day": {}}), base_url=SANDBOX)
    world.notifications.faults.duplicate = True  # SQS is at-least-once; Amazon repeats too
    server = ServerConfig()
    server.bind = ["127.0.0.1:0"]
    server.accesslog = server.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: hypercorn_serve(
            create_app(world), server, task_status=task_status))
        amazon = binds[0]
        world.base_url = amazon
        text = config_text([("amazon-de", "eu", "DE"), ("amazon-uk", "eu", "UK")]).replace(
            SANDBOX, amazon).replace(
            "  eu:\n    channel: amazon\n",
            "  eu:\n    channel: amazon\n    notifications:\n"
            f"      queue_url: {queue_url}\n      access_key_id: ${{E2E_SECRET}}\n"
            "      secret_access_key: ${E2E_SECRET}\n      wait_seconds: 1\n", 1)
        config = parse_config(text, plugins.infos(), filename=str(tmp_path / "m.yaml"),
                              environ=ENV)
        daemon = Daemon(config, plugins=plugins,
                        store=Store(f"sqlite:///{tmp_path / 'm.db'}"))
        lines = await oneshot.notifications(daemon, "eu", "subscribe")
        assert "ORDER_CHANGE: subscribed" in " ".join(lines)
        for integration in daemon.integrations.values():
            await integration.http.aclose()

        daemon = Daemon(config, plugins=plugins,
                        store=Store(f"sqlite:///{tmp_path / 'm.db'}"))
        publisher = httpx.AsyncClient()
        nursery.start_soon(deliver_forever, world, publisher, sqs_endpoint, 0.2)
        with caplog.at_level(logging.INFO):
            await nursery.start(daemon.serve)
            await until(lambda: _true("eu" in daemon.notification_consumers))
            consumer = daemon.notification_consumers["eu"]
            # a message that breaks the schema: counted and dropped, never fatal
            sqs_server.sqs(sqs_endpoint, "SendMessage", {"QueueUrl": queue_url, "MessageBody":
                           json.dumps({"NotificationType": "ORDER_CHANGE", "Payload": {}})})
            async with httpx.AsyncClient(base_url=amazon) as control:
                placed = (await control.post("/_sandbox/orders", json={
                    "marketplace": "DE", "items": {"MUG-1": 2}})).json()
            order_id = placed["orderId"]

            async def stored() -> bool:
                found = await daemon.store.read(lambda s: s.execute(select(Order.marketplace)
                                                .where(Order.channel_order_id == order_id))
                                                .scalar())
                return found == "DE"

            await until(stored)
            await until(lambda: _true(consumer.counts["duplicate"] >= 1
                                      and consumer.counts["bad"] == 1))
            await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    fetches = [c for c in world.calls if c.operation == "getOrder"]
    assert any(c.path.endswith(order_id) and c.status == 200 for c in fetches)
    seen = await daemon.store.read(lambda s: set(s.execute(select(NotificationSeen.subject))
                                                 .scalars()))
    assert order_id in seen and consumer.counts["fetched"] >= 1
    buyer = world.orders[order_id].buyer or {}
    address = world.orders[order_id].address or {}
    for private in [*buyer.values(), address.get("addressLine1"), address.get("postalCode")]:
        if isinstance(private, str) and len(private) > 3:
            assert private not in caplog.text
    await publisher.aclose()


async def _true(value: bool) -> bool:
    return value
