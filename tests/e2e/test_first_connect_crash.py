"""Connecting a shop with open orders survives a SIGKILL between its two first imports
(issue 11): Amazon's quantities before the daemon ever ran and after its first push are
equal, whichever import committed before the kill.

A real ``marketsync run`` process against the simulator on a loopback port (the crash
harness, ``crash_harness.py``), on a day of merchant orders many of which are unshipped,
with no sale after the simulator starts (``--history-only``): Amazon's quantities can
only move if the daemon pushes them. The import that must come second is held back by a
fault on its first call (``searchOrders`` or ``createReport`` answering 503), the daemon
is killed with SIGKILL as soon as the first one's rows are in the database, the fault is
lifted and a new process finishes the connect.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio
from sqlalchemy import func, select

from marketsync.core.domain import inventory
from marketsync.core.store import Store, job_runs
from marketsync.core.store.models import IntegrationRow, Listing, Order
from marketsync.core.types import Fulfillment

from . import crash_harness as harness
from .test_crash import _time

SCENARIO = harness.HERE / "crash" / "first_connect.yaml"
#: how long an order takes to become searchable (data lag, Amazon's two-minute rule, slack)
SEARCHABLE_AFTER = timedelta(minutes=2, seconds=40)
#: real seconds; generous because the machine may be shared (a healthy run takes ~20 s)
FIRST_IMPORT_WITHIN = 180.0
CONVERGE_WITHIN = 240.0


def progress(session) -> dict:
    """What the kill points and the convergence wait look at, in one transaction."""
    listings = session.execute(
        select(IntegrationRow.alias, Listing.channel_sku, Listing.wanted_quantity,
               Listing.acknowledged_quantity, Listing.push_generation,
               Listing.pushed_generation)
        .join(IntegrationRow, IntegrationRow.id == Listing.integration_id)
        .where(Listing.fulfillment == Fulfillment.MFN, Listing.product_id.is_not(None))).all()
    pushes = {health.alias: health.last_success for health in job_runs.health(session)
              if health.kind == "push_stock"}
    return {"orders": session.execute(select(func.count()).select_from(Order)).scalar_one(),
            "listings": listings, "pushed_at": pushes,
            "levels": {level.sku: level for level in inventory.stock_levels(session)}}


async def until(what: str, check, within: float, daemon: harness.DaemonProcess) -> None:
    with trio.fail_after(within):
        while not await check():
            if daemon.process is not None and daemon.process.poll() is not None:
                raise AssertionError(f"the daemon exited while waiting for {what}:\n"
                                     f"{daemon.log_text()[-3000:]}")
            await trio.sleep(0.2)


@pytest.mark.parametrize("first", ["products", "orders"])
async def test_a_sigkill_between_the_first_imports_changes_no_quantity_at_amazon(
        tmp_path: Path, first: str):
    sim = await harness.Simulator.start(SCENARIO, tmp_path / "simulator.log", history_only=True)
    database = f"sqlite:///{tmp_path / 'marketsync.db'}"
    config = tmp_path / "marketsync.yaml"
    # the searchOrders backfill: this test's budgets are real seconds, and the report
    # backfill waits minutes of wall time for Amazon's report (order_report.py)
    config.write_text(harness.config_text(sim.base_url, database, harness.free_port())
                      .replace("    history_days: 1\n",
                               "    history_days: 1\n    order_backfill: search\n"))
    daemon = harness.DaemonProcess(config, tmp_path)
    store = Store(database)
    try:
        sim_orders = await sim.orders()
        now = _time(await sim.now())
        assert len(sim_orders) >= 40
        assert all(_time(o["visibleFrom"]) < now - SEARCHABLE_AFTER for o in sim_orders), \
            "every order must be searchable at once (the seed's last order is too recent)"
        before = {sku: offer["quantity"] for sku, offer in (await sim.catalog()).items()}
        assert set(before) == set(harness.MFN_SKUS)

        # the second import's first call fails until the kill
        held = ["searchOrders"] if first == "products" else ["createReport"]
        await sim.faults(errorShare={"503": 1.0}, operations=held)
        await daemon.start()

        async def first_committed() -> bool:
            if await trio.to_thread.run_sync(store.needs_upgrade):
                return False
            seen = await store.read(progress)
            if first == "products":
                return len(seen["listings"]) == len(harness.MARKETPLACES) * len(before)
            return seen["orders"] == len(sim_orders)
        await until(f"the {first} import", first_committed, FIRST_IMPORT_WITHIN, daemon)
        await daemon.kill()
        at_kill = await store.read(progress)
        if first == "products":
            assert at_kill["orders"] == 0, "the order import must not have run before the kill"
        else:
            assert at_kill["listings"] == [], "the product import must not have run"

        await sim.faults()
        await daemon.start()
        restarted = _time(await sim.now())

        async def converged() -> bool:
            seen = await store.read(progress)
            return (seen["orders"] == len(sim_orders)
                    and len(seen["listings"]) == len(harness.MARKETPLACES) * len(before)
                    and all(wanted == acknowledged and generation <= pushed
                            for _, _, wanted, acknowledged, generation, pushed
                            in seen["listings"])
                    and all(at is not None and at > restarted + timedelta(seconds=3)
                            for at in seen["pushed_at"].values())
                    and len(seen["pushed_at"]) == len(harness.MARKETPLACES))
        await until("the first push", converged, CONVERGE_WITHIN, daemon)
        after = {sku: offer["quantity"] for sku, offer in (await sim.catalog()).items()}
        pushed = [c for c in await sim.calls("patchListingsItem") if c["status"] < 300]
        final = await store.read(progress)
        await daemon.terminate()
    finally:
        await daemon.aclose()
        await sim.close()
        store.close()
    assert pushed, "the first push went out (one patch per SKU and account at least)"
    assert after == before, f"logs in {tmp_path}"
    for sku, quantity in before.items():
        level = final["levels"][sku]
        assert level.reserved > 0, f"{sku}: the scenario must leave unshipped orders of it"
        assert level.short == 0, level
        assert level.on_hand - level.reserved == quantity, (level, quantity)
    assert {(alias, sku): (wanted, acknowledged) for alias, sku, wanted, acknowledged, _, _
            in final["listings"]} == {
        (alias, sku): (quantity, quantity)
        for alias in harness.MARKETPLACES for sku, quantity in before.items()}
