"""SIGKILL the daemon at random points of an import + push cycle; nothing may be lost or doubled.

A real ``marketsync run`` process against the simulator on a loopback port (both on the
real clock), killed with SIGKILL again and again: during its migrations and first order
import, while a push or a shipment confirmation is in flight, right after a stock change,
and while a job waits to record what the channel already did (another connection holds
the database's write lock; see ``crash_harness.writes_held``). After every kill the
store must be consistent in itself; after a last restart that is allowed to converge and
a graceful stop, the store and the simulator must agree:

- every simulator order visible to the daemon by then is in the store exactly once;
- no ledger key twice, on hand and reserved equal the ledger's sums, and reserved equals
  what the stored open merchant orders hold;
- each merchant listing's channel quantity is the local availability (on hand − reserved),
  apart from units of orders the simulator took after the daemon's last push, which the
  daemon cannot know yet;
- every order shipped locally is confirmed on the simulator exactly once.

``MARKETSYNC_CRASH_POINTS`` raises the number of kills (default and minimum 20) for a longer
local run; ``MARKETSYNC_CRASH_SEED`` replays a run (the seed is in every failure message).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from sqlalchemy import func, select

from marketsync.core.domain import inventory, orders
from marketsync.core.domain.pii import PiiCipher, order_aad
from marketsync.core.store import Store
from marketsync.core.store.models import (
    IntegrationRow,
    Listing,
    Order,
    OrderItem,
    PiiKeyCheck,
    Product,
    ShipmentRow,
    StockMovement,
)
from marketsync.core.types import Fulfillment, OrderStatus, ShipmentLine

from marketsync.plugins.amazon.marketplaces import MARKETPLACES

from . import crash_harness as harness

POINTS = max(20, int(os.environ.get("MARKETSYNC_CRASH_POINTS") or 20))
#: SQLite by default (the two-minute budget); ``MARKETSYNC_CRASH_BACKENDS=sqlite,postgresql``
#: adds the PostgreSQL variant (the suite's ``store_url``: a schema of its own)
BACKENDS = [name.strip() for name in
            os.environ.get("MARKETSYNC_CRASH_BACKENDS", "sqlite").split(",") if name.strip()]
#: orders become searchable ``LAG`` after they are visible (Amazon's two-minute rule plus
#: the plugin's slack); a few seconds more for the last import's own duration
IMPORT_LAG = timedelta(minutes=2, seconds=30) + timedelta(seconds=5)
CONVERGE_WITHIN = 45.0
MARKETPLACE_IDS = {alias: MARKETPLACES[code].id for alias, code in harness.MARKETPLACES.items()}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- what the store says ----------------------------------------------------------------------


def store_facts(session) -> dict[str, Any]:
    """Plain values for the checks, read in one transaction so they agree with each other;
    "held" is recomputed from the orders themselves, not from the ledger."""
    aliases = dict(session.execute(select(IntegrationRow.id, IntegrationRow.alias)).all())
    orders = session.execute(select(Order.integration_id, Order.channel_order_id)).all()
    duplicate_keys = session.execute(
        select(StockMovement.key, func.count()).group_by(StockMovement.key)
        .having(func.count() > 1)).all()
    products = {}
    for product in session.execute(select(Product)).scalars():
        ledger = session.execute(
            select(func.coalesce(func.sum(StockMovement.delta_on_hand), 0),
                   func.coalesce(func.sum(StockMovement.delta_reserved), 0))
            .where(StockMovement.product_id == product.id)).one()
        held = 0
        rows = session.execute(
            select(Order.status, OrderItem.quantity, OrderItem.quantity_shipped)
            .join(OrderItem, OrderItem.order_id == Order.id)
            .where(OrderItem.product_id == product.id, Order.fulfillment == Fulfillment.MFN))
        for status, quantity, shipped in rows:
            if status is OrderStatus.NEW:
                held += quantity
            elif status is OrderStatus.PARTIALLY_SHIPPED:
                held += quantity - min(shipped, quantity)
        listings = [
            (aliases[l.integration_id], l.wanted_quantity, l.acknowledged_quantity,
             l.push_generation, l.pushed_generation)
            for l in session.execute(select(Listing).where(
                Listing.product_id == product.id, Listing.fulfillment == Fulfillment.MFN,
                Listing.on_channel.is_(True))).scalars()]
        products[product.sku] = {"on_hand": product.on_hand, "reserved": product.reserved,
                                 "ledger": (int(ledger[0]), int(ledger[1])), "held": held,
                                 "listings": listings}
    shipments = [
        (row.key, order.channel_order_id, row.confirm_state, row.last_error)
        for row, order in session.execute(
            select(ShipmentRow, Order).join(Order, Order.id == ShipmentRow.order_id))]
    return {"orders": [(aliases[i], o) for i, o in orders], "duplicate_keys": duplicate_keys,
            "products": products, "shipments": shipments}


def shippable(session, exclude: set[str]) -> list[tuple[int, str]]:
    """Stored merchant orders still New: (id, channel order id)."""
    return [(oid, channel_id) for oid, channel_id in session.execute(
        select(Order.id, Order.channel_order_id).where(
            Order.fulfillment == Fulfillment.MFN, Order.status == OrderStatus.NEW)
        .order_by(Order.id)).all() if channel_id not in exclude]


# --- what must hold ---------------------------------------------------------------------------


def always_true(facts: dict[str, Any], sim_orders: list[dict[str, Any]]) -> list[str]:
    """What holds after every kill, converged or not: transactions are atomic."""
    problems: list[str] = []
    # orders: none twice, none invented, each under its own marketplace's integration
    by_id = {o["orderId"]: o for o in sim_orders}
    stored = Counter(channel_id for _, channel_id in facts["orders"])
    for order_id, count in stored.items():
        if count > 1:
            problems.append(f"order {order_id} stored {count} times")
    for alias, order_id in facts["orders"]:
        sim_order = by_id.get(order_id)
        if sim_order is None:
            problems.append(f"order {order_id} is stored but the simulator never had it")
        elif sim_order["salesChannel"]["marketplaceId"] != MARKETPLACE_IDS[alias]:
            problems.append(f"order {order_id} stored under {alias}, sold elsewhere")
    # the ledger: unique keys, counters = its sums, reserved = what open orders hold
    for key, count in facts["duplicate_keys"]:
        problems.append(f"ledger key {key!r} applied {count} times")
    for sku, p in facts["products"].items():
        if (p["on_hand"], p["reserved"]) != p["ledger"]:
            problems.append(f"{sku}: on hand/reserved {p['on_hand']}/{p['reserved']} but the "
                            f"ledger sums to {p['ledger'][0]}/{p['ledger'][1]}")
        if p["reserved"] != p["held"]:
            problems.append(f"{sku}: reserved {p['reserved']} but the stored open merchant "
                            f"orders hold {p['held']}")
    return problems


async def violations(store: Store, sim: harness.Simulator, *, visible_before: datetime) -> list[str]:
    """Every broken invariant, in words; empty when the daemon converged correctly."""
    return converged(await store.read(store_facts), await sim.orders(), await sim.catalog(),
                     await sim.calls("patchListingsItem"), await sim.confirmations(),
                     visible_before=visible_before)


def converged(facts: dict[str, Any], sim_orders: list[dict[str, Any]], catalog: dict[str, Any],
              patches: list[dict[str, Any]], confirmations: list[dict[str, Any]], *,
              visible_before: datetime) -> list[str]:
    """``always_true`` plus what holds once the daemon had time to catch up."""
    problems = always_true(facts, sim_orders)

    # every order visible long enough to be searchable is there
    stored = {channel_id for _, channel_id in facts["orders"]}
    ours = set(MARKETPLACE_IDS.values())
    expected = [o["orderId"] for o in sim_orders
                if o["salesChannel"]["marketplaceId"] in ours
                and _time(o["visibleFrom"]) <= visible_before]
    missing = [order_id for order_id in expected if order_id not in stored]
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} visible simulator orders are not "
                        f"in the store, e.g. {missing[:5]}")

    # channel quantities: local availability, less what was sold after the last push
    last_patch: dict[str, datetime] = {}
    for call in patches:
        if 200 <= call["status"] < 300:
            sku = call["path"].rstrip("/").rsplit("/", 1)[-1].split("?")[0]
            last_patch[sku] = max(last_patch.get(sku, _time(call["at"])), _time(call["at"]))
    for sku in harness.MFN_SKUS:
        p = facts["products"].get(sku)
        if p is None:
            problems.append(f"{sku}: no product in the store")
            continue
        available = max(p["on_hand"] - p["reserved"], 0)
        if len(p["listings"]) != len(harness.MARKETPLACES):
            problems.append(f"{sku}: {len(p['listings'])} merchant listing(s) in the store, "
                            f"expected one per integration")
        for alias, wanted, acknowledged, generation, pushed in p["listings"]:
            if (wanted, acknowledged) != (available, available) or generation != pushed:
                problems.append(f"{sku} on {alias}: wanted {wanted}, acknowledged "
                                f"{acknowledged}, generation {pushed}/{generation}; "
                                f"available {available}")
        channel = catalog[sku]["quantity"]
        if sku not in last_patch:  # the channel's own figure was already right (e.g. 0)
            if channel != available:
                problems.append(f"{sku}: the simulator has {channel}, never pushed, but "
                                f"available is {available}")
            continue
        # both clocks print whole seconds: an order of the push's own second may have
        # been taken before the push (overwritten) or after it (still missing)
        after = same_second = 0
        for o in sim_orders:
            if o["fulfillment"]["fulfilledBy"] != "MERCHANT":
                continue
            created = _time(o["createdTime"])
            units = sum(item["quantityOrdered"] for item in o["orderItems"]
                        if item["product"]["sellerSku"] == sku)
            if created > last_patch[sku]:
                after += units
            elif created == last_patch[sku]:
                same_second += units
        if not channel + after <= available <= channel + after + same_second:
            problems.append(f"{sku}: the simulator has {channel} (+{after} sold after the "
                            f"last push at {last_patch[sku]:%H:%M:%S}, +{same_second} in "
                            f"that second) but available is {available}")

    # shipments: each confirmed once, none twice (a retry names the same package, which
    # Amazon takes as an edit of it: counted apart, it adds no package)
    accepted = Counter(c["orderId"] for c in confirmations
                       if c.get("accepted") and not c.get("edit"))
    for order_id, count in accepted.items():
        if count > 1:
            problems.append(f"order {order_id} confirmed {count} times on the simulator")
    for key, order_id, state, error in facts["shipments"]:
        if state != "confirmed" or accepted[order_id] != 1:
            problems.append(f"shipment of {order_id}: {state} locally ({error or 'no error'}), "
                            f"{accepted[order_id]} accepted confirmation(s) on the simulator")
    return problems


# --- the crash cycles -------------------------------------------------------------------------


def set_on_hand(session, sku: str, quantity: int) -> bool:
    """A shelf count written by another process, as `marketsync stock set` does it."""
    try:
        inventory.set_on_hand(session, sku, quantity, note="crash test")
    except inventory.UnknownSku:
        return False  # before the first product import: nothing to count yet
    return True


def ship_every_line(session, order_id: int, tracking: str) -> str:
    """Ship all of an order, naming each line (see ``Run.ship_one`` for why)."""
    order = orders.get_order(session, order_id)
    lines = [ShipmentLine(channel_item_id=item.channel_item_id, quantity=item.quantity)
             for item in order.items]
    return orders.ship_order(session, order_id, carrier="DHL", tracking_number=tracking,
                             lines=lines)


class Run:
    """One crash run's state: the processes, the random stream and what the test did."""

    def __init__(self, tmp_path: Path, sim: harness.Simulator, seed: int, database: str) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        config = tmp_path / "marketsync.yaml"
        config.write_text(harness.config_text(sim.base_url, database, harness.free_port()))
        self.daemon = harness.DaemonProcess(config, tmp_path)
        self.store = Store(database)
        self.url = database
        self.sim = sim
        self.shipped: set[str] = set()
        self.stock_sets = 0
        self.kills: list[str] = []
        self.broken: list[str] = []  #: what ``always_true`` found after each kill

    async def migrated(self) -> bool:
        """Whether a daemon got as far as creating the schema (a kill may come first)."""
        return not await trio.to_thread.run_sync(self.store.needs_upgrade)

    async def set_stock(self) -> None:
        if not await self.migrated():
            return
        sku = self.rng.choice(harness.MFN_SKUS)
        if await self.store.run(set_on_hand, sku, self.rng.randint(60, 160)):
            self.stock_sets += 1

    async def adjust_stock_from_cli(self) -> None:
        sku = self.rng.choice(harness.MFN_SKUS)
        result = await self.daemon.cli("stock", "adjust", sku, "+7", "--reason", "delivery")
        assert result.returncode == 0, f"seed {self.seed}: stock adjust: {result.stderr!r}"
        self.stock_sets += 1

    async def ship_one(self, *, from_cli: bool = False) -> None:
        """Ship a stored New merchant order that the simulator holds as UNSHIPPED for good.

        In the kill cycles the shipment names every line (a direct store write, fast); the
        CLI's ``orders ship`` records a whole-order shipment with no lines, which is the
        other shape ``confirm_shipment`` must handle.
        """
        if not await self.migrated():
            return
        sim_orders = {o["orderId"]: o for o in await self.sim.orders()}
        now = _time(await self.sim.now())
        for order_id, channel_id in await self.store.read(shippable, self.shipped):
            events = sim_orders.get(channel_id, {}).get("events", [])
            paid = [e for e in events if e["status"] == "UNSHIPPED"]
            if (any(e["status"] == "CANCELLED" for e in events) or not paid
                    or _time(paid[0]["at"]) > now - timedelta(seconds=5)):
                continue
            tracking = f"CRASH{order_id:06d}"
            if from_cli:
                result = await self.daemon.cli("orders", "ship", str(order_id),
                                               "--carrier", "DHL", "--tracking", tracking)
                assert result.returncode == 0, f"seed {self.seed}: ship: {result.stderr!r}"
            else:
                await self.store.run(ship_every_line, order_id, tracking)
            self.shipped.add(channel_id)
            return

    async def cycle(self, number: int) -> None:
        """Start, maybe act, SIGKILL at a random point.

        Most kills are timed from the moment the daemon reports running (a Python start
        takes seconds on a loaded machine, and a kill during imports tests nothing); one
        in five from the process start, which also hits migrations and the first checks.
        """
        action = self.rng.choice(("plain", "plain", "stock", "ship", "stock-while-down",
                                  "ship-then-lock", "stock-then-lock"))
        if action == "stock-while-down":
            await self.set_stock()
        await self.daemon.start()
        if action != "plain" or self.rng.random() < 0.8:
            await self.daemon.wait_running()
            since = "running"
        else:
            since = "exec"
        if action.endswith("-then-lock"):
            # killed while a job waits to record what the channel already did
            await (self.set_stock() if action.startswith("stock") else self.ship_one())
            delay = self.rng.uniform(1.0, 3.0)
            async with harness.writes_held(self.url):
                await trio.sleep(delay)
                await self.daemon.kill()
        else:
            if action in ("stock", "ship"):
                await trio.sleep(self.rng.uniform(0.0, 1.5))
                await (self.set_stock() if action == "stock" else self.ship_one())
                delay = self.rng.uniform(0.0, 1.5)
            elif since == "exec":
                delay = self.rng.uniform(0.5, 4.0)
            else:
                delay = self.rng.uniform(0.0, 2.5)
            await trio.sleep(delay)
            await self.daemon.kill()
        point = f"{number}:{action}@{since}+{delay:.2f}s"
        self.kills.append(point)
        if not await self.migrated():
            return
        facts = await self.store.read(store_facts)
        self.broken += [f"after kill {point}: {problem}"
                        for problem in always_true(facts, await self.sim.orders())]


def buyer_names(session, cipher: PiiCipher) -> dict[str, int]:
    """How many orders hold a sealed buyer name, how many open with the key, and how many
    key check values the database holds."""
    rows = session.execute(select(Order.integration_id, Order.channel_order_id,
                                  Order.buyer_name).where(Order.buyer_name.is_not(None))).all()
    opened = sum(1 for row in rows if cipher.open(
        row.buyer_name, order_aad("buyer_name", row.integration_id, row.channel_order_id)))
    checks = session.execute(select(func.count()).select_from(PiiKeyCheck)).scalar()
    return {"sealed": len(rows), "opened": opened, "checks": checks}


async def converge(run: Run, visible_before: datetime) -> list[str]:
    """Restart once more and wait (bounded) until nothing is broken, then stop gracefully."""
    await run.daemon.start()
    await run.daemon.wait_running()
    problems: list[str] = []
    with trio.move_on_after(CONVERGE_WITHIN):
        while problems := await violations(run.store, run.sim, visible_before=visible_before):
            await trio.sleep(1.0)
    code = await run.daemon.terminate()
    assert code == 0, f"seed {run.seed}: SIGTERM exit status {code}:\n{run.daemon.log_text()[-3000:]}"
    return problems


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sigkill_at_random_points_loses_and_repeats_nothing(tmp_path, store_url):
    seed = int(os.environ.get("MARKETSYNC_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash test seed {seed} (MARKETSYNC_CRASH_SEED={seed} replays it), {POINTS} kills")
    sim = await harness.Simulator.start(harness.SCENARIO, tmp_path / "simulator.log")
    run = Run(tmp_path, sim, seed, store_url)
    try:
        for number in range(POINTS):
            await run.cycle(number)
        await run.ship_one(from_cli=True)  # the user's way, for the last run to confirm
        await run.adjust_stock_from_cli()
        visible_before = _time(await sim.now()) - IMPORT_LAG
        await converge(run, visible_before)
        problems = run.broken + await violations(run.store, sim, visible_before=visible_before)
        pushes = [c for c in await sim.calls("patchListingsItem") if c["status"] < 300]
        sealed = run.store.run_blocking(buyer_names, PiiCipher.from_text(harness.PII_KEY))
    finally:
        await run.daemon.aclose()
        await sim.close()
        run.store.close()
    assert not problems, (f"seed {seed}, kills {run.kills}:\n  " + "\n  ".join(problems)
                          + f"\nlogs in {tmp_path}")
    assert len(run.kills) >= POINTS
    # the harness runs with a pii.key: buyer data was sealed through every kill and opens
    assert sealed["checks"] == 1 and sealed["opened"] > 0 and sealed["opened"] == sealed["sealed"]
    assert pushes and run.shipped and run.stock_sets, (
        f"seed {seed}: the run pushed {len(pushes)} time(s), shipped {len(run.shipped)} "
        f"order(s) and set stock {run.stock_sets} time(s); all must happen for the test to "
        f"mean anything")


# --- the checks themselves ----------------------------------------------------------------------
#
# A crash test that passes proves little unless its checks can fail: each corruption below
# is what one kind of crash bug would leave behind, and must be reported.


def _sim_order(order_id: str, alias: str, created: str, sku: str, quantity: int) -> dict[str, Any]:
    return {"orderId": order_id, "salesChannel": {"marketplaceId": MARKETPLACE_IDS[alias]},
            "createdTime": f"2026-11-27T{created}Z", "visibleFrom": f"2026-11-27T{created}Z",
            "fulfillment": {"fulfilledBy": "MERCHANT"},
            "orderItems": [{"quantityOrdered": quantity, "product": {"sellerSku": sku}}]}


def _consistent_world() -> dict[str, Any]:
    def product(on_hand: int, reserved: int) -> dict[str, Any]:
        available = on_hand - reserved
        return {"on_hand": on_hand, "reserved": reserved, "ledger": (on_hand, reserved),
                "held": reserved, "listings": [("amazon-uk", available, available, 3, 3),
                                               ("amazon-de", available, available, 2, 2)]}

    return {
        "facts": {"orders": [("amazon-uk", "A-1"), ("amazon-de", "B-1")], "duplicate_keys": [],
                  "products": {"MUG-1": product(10, 2), "KETTLE-1": product(5, 0)},
                  "shipments": [("shipment:1:DHL:X", "A-1", "confirmed", None)]},
        "sim_orders": [_sim_order("A-1", "amazon-uk", "10:00:00", "MUG-1", 1),
                       _sim_order("B-1", "amazon-de", "10:01:00", "MUG-1", 2),
                       # sold after the last push, not yet searchable: the channel has 4
                       _sim_order("C-1", "amazon-de", "10:05:00", "KETTLE-1", 1)],
        "catalog": {"MUG-1": {"quantity": 8}, "KETTLE-1": {"quantity": 4}},
        "patches": [{"status": 200, "at": "2026-11-27T10:04:00Z",
                     "path": f"/listings/2021-08-01/items/{harness.SELLER}/MUG-1"},
                    {"status": 200, "at": "2026-11-27T10:04:30Z",
                     "path": f"/listings/2021-08-01/items/{harness.SELLER}/KETTLE-1"}],
        "confirmations": [{"orderId": "A-1", "accepted": False}, {"orderId": "A-1", "accepted": True}],
    }


def _check(world: dict[str, Any]) -> list[str]:
    return converged(world["facts"], world["sim_orders"], world["catalog"], world["patches"],
                     world["confirmations"], visible_before=_time("2026-11-27T10:03:00Z"))


CORRUPTIONS = {
    "order stored twice": (lambda w: w["facts"]["orders"].append(("amazon-de", "A-1")),
                           "A-1 stored 2 times"),
    "order lost": (lambda w: w["facts"]["orders"].remove(("amazon-de", "B-1")),
                   "1 of 2 visible simulator orders are not in the store"),
    "order invented": (lambda w: w["facts"]["orders"].append(("amazon-uk", "Z-9")),
                       "Z-9 is stored but the simulator never had it"),
    "ledger key twice": (lambda w: w["facts"]["duplicate_keys"].append(("order-item:1:reserve", 2)),
                         "applied 2 times"),
    "counter off the ledger": (lambda w: w["facts"]["products"]["MUG-1"].update(ledger=(11, 2)),
                               "ledger sums to 11/2"),
    "reservation lost": (lambda w: w["facts"]["products"]["MUG-1"].update(held=3),
                         "orders hold 3"),
    "push never acknowledged": (
        lambda w: w["facts"]["products"]["MUG-1"]["listings"].__setitem__(
            0, ("amazon-uk", 8, 8, 4, 3)), "generation 3/4"),
    "channel not converged": (lambda w: w["catalog"]["MUG-1"].update(quantity=7),
                              "the simulator has 7"),
    "never pushed": (lambda w: w["patches"].pop(), "KETTLE-1: the simulator has 4, never pushed"),
    "confirmed twice": (lambda w: w["confirmations"].append({"orderId": "A-1", "accepted": True}),
                        "A-1 confirmed 2 times"),
    "shipment stuck": (lambda w: w["facts"]["shipments"].__setitem__(
        0, ("shipment:1:DHL:X", "A-1", "pending", None)), "shipment of A-1: pending"),
}


def test_the_checks_pass_a_consistent_world():
    assert _check(_consistent_world()) == []


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_the_checks_report_what_a_crash_bug_leaves(corruption):
    world = _consistent_world()
    corrupt, expected = CORRUPTIONS[corruption]
    corrupt(world)
    problems = _check(world)
    assert any(expected in problem for problem in problems), problems
