"""The fault matrix: hours of simulated trading with a fault in each, then every promise checked.

One in-process daemon (with a ``pii.key``) on the simulator under ``MockClock``. Each
simulated hour ("round") places orders through the control API — good ones and one
malformed one of the next kind the simulator can make, merchant and FBA in turn — turns
one fault on for the first third of the round (5xx storm, 429 storm, every access token
expired at once, a full outage), changes a stock figure locally and ships an open merchant order.
After the last round the faults clear and the daemon gets an hour to converge; then:

- every good order is stored exactly once, and no bad one is;
- every bad order is in quarantine, and the quarantine holds no buyer data;
- no stock-ledger key appears twice;
- every merchant listing's quantity at the channel equals the local availability;
- every local shipment was confirmed at the channel exactly once;
- the daemon never stopped on its own (its ``serve`` task still ran at the end).

``tests/e2e/test_fault_matrix.py`` runs a few rounds in CI; ``bench/fault_matrix.py`` runs
a simulated week and prints the table in docs/benchmarks.md. SIGKILL at random points is
the crash harness's part (``tests/e2e/test_crash.py``); the database held locked for two
minutes waits for database errors to become non-fatal (issue 12, part 2).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from sqlalchemy import func, select

from marketsync.core.domain import inventory, orders
from marketsync.core.store import quarantine
from marketsync.core.store.models import Listing, Order, Product, StockMovement
from marketsync.core.types import Fulfillment, OrderStatus
from marketsync.plugins.amazon.sandbox import create_app
from marketsync.plugins.amazon.sandbox.control import MALFORMATIONS

SANDBOX = "http://sandbox.local"
ROUND = 3600.0
CONVERGE = 3600.0
#: what each round turns on, in turn (the simulator's ``Faults``)
FAULTS = ("5xx storm", "429 storm", "token expiry", "outage", "none")


@dataclass
class Findings:
    """What a run saw; ``problems`` empty means every promise held."""

    rounds: int = 0
    faults: Counter = field(default_factory=Counter)
    good: set[str] = field(default_factory=set)
    bad: dict[str, str] = field(default_factory=dict)
    shipped: dict[str, str] = field(default_factory=dict)  #: channel order id -> key
    problems: list[str] = field(default_factory=list)
    stored_orders: int = 0
    quarantined: int = 0
    ledger_rows: int = 0
    throttled: int = 0
    failed_job_runs: int = 0
    daemon_exited: bool = False
    listings_compared: int = 0

    def row(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "faults": dict(self.faults), "good orders": len(self.good),
                "malformed orders": len(self.bad), "local shipments": len(self.shipped),
                "stored orders": self.stored_orders, "quarantined": self.quarantined,
                "ledger rows": self.ledger_rows, "429s seen by the daemon": self.throttled,
                "failed job runs": self.failed_job_runs, "daemon exited": self.daemon_exited,
                "listings compared": self.listings_compared,
                "problems": self.problems}


def _set_fault(world, name: str) -> None:
    faults = world.faults
    faults.error_share, faults.token_lifetime = {}, None
    if name == "5xx storm":
        faults.error_share = {500: 0.3, 503: 0.2}
    elif name == "429 storm":
        faults.error_share = {429: 0.7}
    elif name == "token expiry":
        # every access token dies now, once; new ones live their hour. Not more often:
        # a token that dies while its call, already refreshed once, waits for a bucket a
        # 429 storm slowed down is refused again, and the daemon takes a 403 after a
        # refresh for lost authorization (INCOMPLETE until Retry) — a finding recorded in
        # docs/benchmarks.md, not a promise this matrix checks
        world.expire_access_tokens()
    elif name == "outage":
        faults.error_share = {503: 1.0}


async def _place(control: httpx.AsyncClient, marketplace: str, sku: str,
                 fulfilled_by: str, malformed: str | None = None) -> str | None:
    body: dict[str, Any] = {"marketplace": marketplace, "items": {sku: 1},
                            "fulfilledBy": fulfilled_by}
    if malformed:
        body["malformed"] = malformed
    answer = await control.post("/_sandbox/orders", json=body)
    return answer.json()["orderId"] if answer.status_code == 201 else None


def _open_merchant_order(session, exclude: set[str]) -> tuple[int, str] | None:
    row = session.execute(
        select(Order.id, Order.channel_order_id)
        .where(Order.fulfillment == Fulfillment.MFN, Order.status == OrderStatus.NEW,
               Order.channel_order_id.not_in(exclude or {""}))
        .order_by(Order.id)).first()
    return None if row is None else (row[0], row[1])


async def run_matrix(daemon, world, *, rounds: int, marketplaces: dict[str, str],
                     sellers: dict[str, str], buyer_texts, round_seconds: float = ROUND,
                     faults: tuple[str, ...] = FAULTS) -> Findings:
    """Drive ``daemon`` through ``rounds`` rounds and check (see the module docstring).

    :param marketplaces: alias -> marketplace code, for placing orders.
    :param sellers: marketplace code -> seller id, for the channel's quantities.
    :param buyer_texts: ``world`` -> every buyer name, e-mail and street the simulator made.
    :param round_seconds: simulated length of a round; its first third has the fault.
    :param faults: the faults rounds take in turn (a subset of :data:`FAULTS`).
    """
    found = Findings()
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                base_url=SANDBOX)
    served = trio.Event()

    async def serve(task_status=trio.TASK_STATUS_IGNORED):
        try:
            await daemon.serve(task_status=task_status)
        finally:
            served.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve)
        await trio.sleep(900)  # first imports
        codes = sorted(set(marketplaces.values()))
        for number in range(rounds):
            fault = faults[number % len(faults)]
            kind = MALFORMATIONS[number % len(MALFORMATIONS)]
            code = codes[number % len(codes)]
            fba = number % 2 == 1
            bad = await _place(control, code, "SPORK-FBA" if fba else "MUG-1",
                               "AMAZON" if fba else "MERCHANT", kind)
            if bad:
                found.bad[bad] = kind
            for sku, by in (("MUG-1", "MERCHANT"), ("KETTLE-1", "MERCHANT"),
                            ("SPORK-FBA", "AMAZON")):
                good = await _place(control, code, sku, by)
                if good:
                    found.good.add(good)
            _set_fault(world, fault)
            found.faults[fault] += 1
            await trio.sleep(round_seconds / 3)
            _set_fault(world, "none")
            await daemon.store.run(inventory.set_on_hand, "MUG-1", 400 + 7 * number,
                                   note=f"stocktake {number}")
            daemon.stock_changed()
            target = await daemon.store.read(_open_merchant_order, set(found.shipped))
            if target is not None:
                key = await daemon.store.run(orders.ship_order, target[0], carrier="DHL",
                                             tracking_number=f"FM{number:05d}")
                found.shipped[target[1]] = key
            await trio.sleep(round_seconds * 2 / 3)
            found.rounds += 1
        await trio.sleep(CONVERGE)
        found.daemon_exited = served.is_set()
        await _check(daemon, world, found, sellers, buyer_texts)
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    await control.aclose()
    return found


async def _check(daemon, world, found: Findings, sellers: dict[str, str], buyer_texts) -> None:
    problems = found.problems

    def facts(session):
        stored = session.execute(select(Order.channel_order_id)).scalars().all()
        twice = session.execute(select(StockMovement.key, func.count())
                                .group_by(StockMovement.key).having(func.count() > 1)).all()
        ledger = session.execute(select(func.count()).select_from(StockMovement)).scalar_one()
        levels = {level.sku: level for level in inventory.stock_levels(session)}
        listed = session.execute(select(Listing.channel_sku, Product.sku).join(
            Product, Product.id == Listing.product_id)).all()
        return stored, twice, ledger, levels, listed

    stored, twice, ledger, levels, listed = await daemon.store.read(facts)
    records = await daemon.store.read(quarantine.list_records)
    found.stored_orders, found.quarantined, found.ledger_rows = len(stored), len(records), ledger
    found.throttled = sum(daemon.stats.throttled.values())
    found.failed_job_runs = sum(n for (_, _, ok), n in daemon.stats.jobs.items() if not ok)
    counts = Counter(stored)
    if missing := found.good - set(counts):
        problems.append(f"{len(missing)} good order(s) not stored: {sorted(missing)[:3]}")
    if doubled := [i for i, n in counts.items() if n > 1]:
        problems.append(f"order(s) stored twice: {doubled[:3]}")
    if leaked := set(found.bad) & set(counts):
        problems.append(f"malformed order(s) stored as good: {sorted(leaked)[:3]}")
    if unquarantined := set(found.bad) - {r.record_id for r in records}:
        problems.append(f"malformed order(s) not in quarantine: {sorted(unquarantined)[:3]}")
    kept = json.dumps([r.raw for r in records]) + " ".join(r.reason for r in records)
    if in_quarantine := [t for t in buyer_texts(world) if t in kept]:
        problems.append(f"buyer data in the quarantine: {len(in_quarantine)} value(s)")
    if twice:
        problems.append(f"ledger key(s) twice: {[k for k, _ in twice][:3]}")
    for code, seller in sellers.items():
        view = world.catalog.view(seller)
        for channel_sku, sku in listed:
            offer = view.get(channel_sku)
            if offer is None or offer["fulfillment"] != "MFN" or sku not in levels:
                continue
            local = max(levels[sku].on_hand - levels[sku].reserved, 0)
            found.listings_compared += 1
            if offer["quantity"] != local:
                problems.append(f"{code} {channel_sku}: channel {offer['quantity']} != local {local}")
    accepted = Counter(c["orderId"] for c in world.confirmations if c.get("accepted"))
    for order_id in found.shipped:
        if accepted[order_id] != 1:
            problems.append(f"shipment of {order_id} confirmed {accepted[order_id]} time(s)")
    if found.daemon_exited:
        problems.append("the daemon stopped on its own")
    found.problems = sorted(set(problems))
