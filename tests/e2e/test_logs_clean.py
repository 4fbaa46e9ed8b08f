"""No token, secret or buyer data in the logs, whatever the daemon goes through.

The daemon runs end to end on the simulator with the production JSON log format at DEBUG:
imports of orders with buyer data, stock pushes, token refreshes every few minutes, a
429 storm, an outage and a revoked grant. Then every secret the simulator handed out and
every buyer's name, e-mail and address is searched for in what was written.
"""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import trio

from marketsync.core.domain import inventory

from marketsync.core.runtime import logs
from marketsync.core.runtime.states import IntegrationState

from .conftest import CLIENT_SECRET, EU, REFRESH


@pytest.fixture
def captured():
    """The root logger writing JSON at DEBUG into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    logs.setup("json", "DEBUG", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if getattr(handler, "_marketsync", False):
            root.removeHandler(handler)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def forbidden(world) -> tuple[list[str], list[re.Pattern]]:
    """Every secret and piece of buyer data the simulated world knows of."""
    texts = [CLIENT_SECRET, *REFRESH.values()]
    texts += [token for token in world.grants if len(token) > 8]  # refresh, access, codes
    patterns = []
    for order in world.orders.values():
        texts += [order.buyer.get("buyerName", ""), order.buyer.get("buyerEmail", ""),
                  order.address.get("addressLine1", "")]
        if order.address.get("postalCode"):
            patterns.append(re.compile(rf"\b{re.escape(order.address['postalCode'])}\b"))
    return sorted({t for t in texts if t}), patterns


async def test_logs_never_carry_tokens_secrets_or_buyer_data(make_daemon, world, e2e_clock, captured):
    daemon = make_daemon()
    world.faults.token_lifetime = 300  # access tokens refreshed every five minutes
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # first imports: orders with buyer and address
        await daemon.store.run(inventory.set_on_hand, "MUG-1", 321, note="stocktake")
        daemon.stock_changed()
        await trio.sleep(600)  # pushes and their submissions
        world.faults.error_share = {429: 0.7}  # a 429 storm ...
        await trio.sleep(600)
        world.faults.error_share = {503: 1.0}  # ... then an outage
        await trio.sleep(600)
        world.faults.error_share = {}
        world.revoke_refresh_tokens(seller_id=EU)
        world.expire_access_tokens()
        await trio.sleep(900)
        states = {alias: runner.state for alias, runner in daemon.runners.items()}
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()

    output = captured.getvalue()
    lines = output.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(entries) > 30
    assert any(e["level"] == "debug" for e in entries)
    assert states["amazon-uk"] is IntegrationState.INCOMPLETE  # the revoked grant was seen
    assert "-> INCOMPLETE" in output
    # the documented `integration` field: on every line about one integration's work
    incomplete = [e for e in entries if "-> INCOMPLETE" in e["message"]]
    assert {e.get("integration") for e in incomplete} >= {"amazon-uk", "amazon-de"}
    assert all(e["message"].startswith(f"integration {e['integration']}:") for e in incomplete)
    from_jobs = [e for e in entries if re.match(r"amazon-\w\w/\w+ fail", e["message"])]
    assert from_jobs and all(e["message"].startswith(f"{e.get('integration')}/")
                             for e in from_jobs), from_jobs[:3]
    assert re.search(r"429|throttl", output, re.I)
    assert sum(daemon.stats.throttled.values()) > 0
    assert world.orders and any(o.buyer for o in world.orders.values())

    texts, patterns = forbidden(world)
    assert len(texts) > 50  # the check below has something to find
    leaks = [text for text in texts if text in output]
    leaks += [pattern.pattern for pattern in patterns if pattern.search(output)]
    assert not leaks, f"found in the logs: {leaks[:5]}"
    assert "Atza|" not in output and "Atzr|" not in output
