"""Review before the first push, and the safety valve, against the simulator (issue 11):
a held push changes nothing at Amazon, says why in ``status`` and the metrics, and goes
out whole once accepted."""

from __future__ import annotations

import pytest

from marketsync.core.domain import inventory, push_guard
from marketsync.core.runtime import jobs, status
from marketsync.core.web.metrics import DaemonCollector

from .conftest import NA
from .test_first_connect import no_more_sales

SKUS = [f"TENT-{n}" for n in range(5)]


@pytest.fixture
def scenario_changes():
    return {"catalog": [{"sku": sku, "asin": f"B0RV00000{n}", "title": sku, "mfn_quantity": 8,
                         "handling_time": 1, "prices": {"US": "20.00"}}
                        for n, sku in enumerate(SKUS)],
            "generator": {"orders_per_day": {}}}


def quantities(world) -> dict[str, int]:
    return {sku: offer["quantity"] for sku, offer in world.catalog.view(NA).items()}


async def run(daemon, kind: str) -> None:
    integration = daemon.integrations["amazon-us"]
    hooks = daemon.plugins.channel(integration.channel)
    if kind in jobs.IMPORTS:
        while not (await jobs.run_import(daemon, integration, hooks, kind)).done:
            pass
    else:
        await jobs.run(daemon, integration, hooks, kind)


async def connected(daemon) -> None:
    from marketsync.core.cli import oneshot
    state, reason = await oneshot.check(daemon, "amazon-us")
    assert state == "LIVE", reason
    await run(daemon, "import_products")


async def test_a_new_connection_waits_for_the_sellers_accept(make_daemon, world, e2e_clock):
    no_more_sales(world)
    daemon = make_daemon(integrations=[("amazon-us", "na", "US")], review=True, valve=True)
    await connected(daemon)
    await daemon.store.run(inventory.set_on_hand, "TENT-1", 3, note="count")
    before = quantities(world)
    await run(daemon, "push_stock")
    assert quantities(world) == before  # held
    report = await daemon.store.read(status.collect)
    assert "held for review" in status.render(report)
    plan = await daemon.store.read(push_guard.plan, "amazon-us")
    assert [(c.channel_sku, c.channel_quantity, c.wanted_quantity)
            for c in plan.changes] == [("TENT-1", 8, 3)]

    assert await daemon.store.run(push_guard.accept, "amazon-us") == "review"
    await run(daemon, "push_stock")
    assert quantities(world) == {**before, "TENT-1": 3}


async def test_the_valve_holds_a_mass_zeroing(make_daemon, world, e2e_clock):
    no_more_sales(world)
    daemon = make_daemon(integrations=[("amazon-us", "na", "US")], valve=True)
    await connected(daemon)
    for sku in SKUS[:4]:
        await daemon.store.run(inventory.set_on_hand, sku, 0, note="a wrong CSV")
    before = quantities(world)
    await run(daemon, "push_stock")
    assert quantities(world) == before
    assert daemon.stats.valve_trips["amazon-us"] == 1
    text = status.render(await daemon.store.read(status.collect))
    assert "HELD by the safety valve: 4 of 5 listings with stock would go to 0" in text
    (trips,) = [m for m in DaemonCollector(daemon).collect()
                if m.name == "marketsync_push_valve_trips"]
    assert [(s.labels, s.value) for s in trips.samples
            if s.name.endswith("_total")] == [({"integration": "amazon-us"}, 1)]

    await daemon.store.run(push_guard.accept, "amazon-us")
    await run(daemon, "push_stock")
    assert quantities(world) == {**before, **{sku: 0 for sku in SKUS[:4]}}
