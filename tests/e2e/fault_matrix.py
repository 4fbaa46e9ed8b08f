"""The fault matrix: hours of simulated trading with a fault in each, then every promise checked.

One in-process daemon (with a ``pii.key``) on the simulator under ``MockClock``. Each
simulated hour ("round") places orders through the control API — good ones and one
malformed one of the next kind the simulator can make, merchant and FBA in turn — turns
one fault on for the first third of the round (5xx storm, 429 storm, every access token
expired at once, a full outage, a stuck feed, the database locked for two minutes),
changes a stock figure locally and ships an open merchant order.
After the last round the faults clear and the daemon gets an hour to converge; then:

- every good order is stored exactly once, and no bad one is;
- every bad order is in quarantine, and the quarantine holds no buyer data;
- no stock-ledger key appears twice;
- every merchant listing's quantity at the channel equals the local availability;
- every local shipment was confirmed at the channel exactly once;
- the daemon never stopped on its own (its ``serve`` task still ran at the end).

``tests/e2e/test_fault_matrix.py`` runs a few rounds in CI; ``bench/fault_matrix.py`` runs
a simulated week and prints the table in docs/benchmarks.md. SIGKILL at random points is
the crash harness's part (``tests/e2e/test_crash.py``).

Two faults need the daemon's side too. *Stuck feed*: only a push of more SKUs than the
Amazon plugin patches one by one goes as a feed, so for that fault's window the plugin's
``PATCH_LIMIT`` is 1 (a delivery of both merchant SKUs starts the window) and a feed counts
as stuck after a sixth of a round instead of an hour, so the daemon gives it up and
pushes again while the simulator still holds every feed. *Database locked*: another
connection holds SQLite's write lock (``BEGIN IMMEDIATE``, as a long import or a backup
would) for two simulated minutes; the caller shortens the busy timeout so that costs
simulated, not real, time. PostgreSQL has no database-wide write lock to hold (a table
lock only makes writers wait, with the simulated clock stopped); its outage is the cut
proxy of ``tests/core/runtime/test_db_outage.py``, and the round runs without a fault.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from sqlalchemy import func, select

from marketsync.core.domain import inventory, orders
from marketsync.core.store import quarantine
from marketsync.core.store.models import Listing, Order, Product, StockMovement, SubmissionRow
from marketsync.core.types import Fulfillment, OrderStatus
from marketsync.plugins.amazon import feeds as amazon_feeds
from marketsync.plugins.amazon import listings as amazon_listings
from marketsync.plugins.amazon.sandbox import create_app
from marketsync.plugins.amazon.sandbox.control import MALFORMATIONS

SANDBOX = "http://sandbox.local"
ROUND = 3600.0
CONVERGE = 3600.0
#: what each round turns on, in turn (the simulator's ``Faults``)
FAULTS = ("5xx storm", "429 storm", "token expiry", "outage", "stuck feed", "database locked",
          "none")
#: how long the "database locked" fault holds SQLite's write lock
LOCK_HELD = 120.0


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
    database_outages: int = 0  #: times the daemon saw its database unwritable
    feeds_given_up: int = 0  #: feed submissions the daemon called stuck and pushed again
    feeds_held: int = 0  #: feeds the simulator held while the stuck-feed fault was on
    restarts: int = 0  #: crashes (abrupt cancellation, new daemon) survived
    invariant_checks: int = 0  #: times the any-moment promises were checked

    def row(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "faults": dict(self.faults), "good orders": len(self.good),
                "malformed orders": len(self.bad), "local shipments": len(self.shipped),
                "stored orders": self.stored_orders, "quarantined": self.quarantined,
                "ledger rows": self.ledger_rows, "429s seen by the daemon": self.throttled,
                "failed job runs": self.failed_job_runs, "daemon exited": self.daemon_exited,
                "listings compared": self.listings_compared,
                "database outages seen": self.database_outages,
                "feeds held by the channel": self.feeds_held,
                "feeds given up and pushed again": self.feeds_given_up,
                "restarts": self.restarts, "checks after restarts and at the end":
                self.invariant_checks,
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
    faults.stuck_feeds = name == "stuck feed"


@contextmanager
def _feeds_for_every_push(stuck_after: float):
    """The Amazon plugin sends every push of two SKUs or more as a feed, and calls a feed
    stuck after ``stuck_after`` seconds (see the module docstring)."""
    limit, after = amazon_listings.PATCH_LIMIT, amazon_feeds.STUCK_AFTER
    amazon_listings.PATCH_LIMIT, amazon_feeds.STUCK_AFTER = 1, timedelta(seconds=stuck_after)
    try:
        yield
    finally:
        amazon_listings.PATCH_LIMIT, amazon_feeds.STUCK_AFTER = limit, after


@asynccontextmanager
async def _write_lock_held(daemon):
    """SQLite's write lock held by another connection for the block; yields False (and
    holds nothing) on PostgreSQL."""
    if not daemon.store.is_sqlite:
        yield False
        return
    holder = sqlite3.connect(daemon.store.url.database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield True
        holder.rollback()
    finally:
        holder.close()


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


class _Running:
    """The daemon of the moment: started in the matrix's nursery, crashed and replaced.

    A crash here is an abrupt cancellation (no ``stop``, no grace) followed by a new
    ``Daemon`` on the same database and the same simulator: everything the old one only
    held in memory is gone. It is not SIGKILL (a database call already in a worker thread
    still finishes; the process's WAL is not cut), which ``tests/e2e/test_crash.py`` does
    on the real clock; what it adds is restarts in the middle of every fault."""

    def __init__(self, daemon, nursery: trio.Nursery, found: "Findings"):
        self.daemon = daemon
        self._nursery = nursery
        self._found = found
        self._scope: trio.CancelScope | None = None
        self.stopping = False

    async def start(self) -> None:
        await self._nursery.start(self._serve, self.daemon)

    def start_soon(self) -> None:
        """Start without waiting for it to be up: a daemon restarted while its database is
        locked comes up only once the lock is gone, and the matrix holds that lock."""
        self._nursery.start_soon(self._serve, self.daemon)

    async def _serve(self, daemon, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            try:
                await daemon.serve(task_status=task_status)
            finally:
                # cancelled by crash() or stopped by stop() is not on its own
                if not scope.cancel_called and not self.stopping:
                    self._found.daemon_exited = True

    async def stop(self) -> None:
        self.stopping = True
        await self.daemon.stop(grace=1)

    async def crash(self, make_daemon) -> None:
        assert self._scope is not None
        self._scope.cancel()
        await trio.sleep(0)  # let the cancellation unwind what it can
        old = self.daemon
        _count(old, self._found)
        # closed here, not in a worker thread: bench/common.py's guard and core.clock's each
        # suspend autojump around threads, and one overlapping the other can leave the
        # clock stopped for good
        old.store.close()
        self.daemon = make_daemon()
        self.start_soon()
        await trio.sleep(0)


async def run_matrix(daemon, world, *, rounds: int, marketplaces: dict[str, str],
                     sellers: dict[str, str], buyer_texts, round_seconds: float = ROUND,
                     faults: tuple[str, ...] = FAULTS, make_daemon=None, restarts: int = 0,
                     seed: int = 12) -> Findings:
    """Drive ``daemon`` through ``rounds`` rounds and check (see the module docstring).

    :param marketplaces: alias -> marketplace code, for placing orders.
    :param sellers: marketplace code -> seller id, for the channel's quantities.
    :param buyer_texts: ``world`` -> every buyer name, e-mail and street the simulator made.
    :param round_seconds: simulated length of a round; its first third has the fault.
    :param faults: the faults rounds take in turn (a subset of :data:`FAULTS`).
    :param make_daemon: a new daemon on the same database and simulator, for restarts.
    :param restarts: this many crashes at random moments of the rounds (``seed``), each
        followed by a new daemon and the checks that must hold at any moment.
    """
    found = Findings()
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                base_url=SANDBOX)
    rng = random.Random(seed)
    span = rounds * round_seconds
    crash_at = sorted(900 + rng.uniform(0, span) for _ in range(restarts if make_daemon else 0))

    async with trio.open_nursery() as nursery:
        running = _Running(daemon, nursery, found)
        began = trio.current_time()
        await running.start()

        async def pause(seconds: float) -> None:
            """Sleep ``seconds``, crashing and restarting the daemon at any moment due."""
            end = trio.current_time() + seconds
            while crash_at and began + crash_at[0] < end:
                await trio.sleep_until(began + crash_at.pop(0))
                await running.crash(make_daemon)
                found.restarts += 1
                await _invariants(running.daemon, world, found, buyer_texts,
                                  f"after restart {found.restarts}")
            await trio.sleep_until(end)

        await pause(900)  # first imports
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
            if fault == "stuck feed":
                with _feeds_for_every_push(stuck_after=round_seconds / 6):
                    for sku in ("MUG-1", "KETTLE-1"):  # a push of both at once: a feed
                        await running.daemon.store.run(inventory.adjust, sku, 5,
                                                       reason=f"delivery {number}")
                    running.daemon.stock_changed()
                    await pause(round_seconds / 3)
                    _set_fault(world, "none")
            elif fault == "database locked":
                async with _write_lock_held(running.daemon) as held:
                    if held:
                        await pause(LOCK_HELD)
                if not held:
                    found.faults[fault] -= 1
                    found.faults["none (no SQLite lock to hold)"] += 1
                await pause(round_seconds / 3 - (LOCK_HELD if held else 0))
            else:
                await pause(round_seconds / 3)
            _set_fault(world, "none")
            await running.daemon.store.run(inventory.set_on_hand, "MUG-1", 400 + 7 * number,
                                           note=f"stocktake {number}")
            running.daemon.stock_changed()
            target = await running.daemon.store.read(_open_merchant_order, set(found.shipped))
            if target is not None:
                key = await running.daemon.store.run(orders.ship_order, target[0],
                                                     carrier="DHL",
                                                     tracking_number=f"FM{number:05d}")
                found.shipped[target[1]] = key
            await pause(round_seconds * 2 / 3)
            found.rounds += 1
        await trio.sleep(CONVERGE)
        await _check(running.daemon, world, found, sellers, buyer_texts)
        await running.stop()
        nursery.cancel_scope.cancel()
    await control.aclose()
    return found


def _count(daemon, found: Findings) -> None:
    """Add what ``daemon`` (one of the run's, a crash ends each) saw to the run's figures."""
    found.throttled += sum(daemon.stats.throttled.values())
    found.failed_job_runs += sum(n for (_, _, ok), n in daemon.stats.jobs.items() if not ok)
    found.database_outages += daemon.database.outages


async def _invariants(daemon, world, found: Findings, buyer_texts, when: str) -> None:
    """What must hold at any moment, between two crashes too: nothing stored twice, nothing
    malformed stored as good, no buyer data in the quarantine, no shipment confirmed twice."""
    def facts(session):
        stored = session.execute(select(Order.channel_order_id)).scalars().all()
        twice = session.execute(select(StockMovement.key, func.count())
                                .group_by(StockMovement.key).having(func.count() > 1)).all()
        return stored, twice

    stored, twice = await daemon.store.read(facts)
    records = await daemon.store.read(quarantine.list_records)
    counts = Counter(stored)
    problems = []
    if doubled := [i for i, n in counts.items() if n > 1]:
        problems.append(f"order(s) stored twice: {doubled[:3]}")
    if leaked := set(found.bad) & set(counts):
        problems.append(f"malformed order(s) stored as good: {sorted(leaked)[:3]}")
    kept = json.dumps([r.raw for r in records]) + " ".join(r.reason for r in records)
    if in_quarantine := [t for t in buyer_texts(world) if t in kept]:
        problems.append(f"buyer data in the quarantine: {len(in_quarantine)} value(s)")
    if twice:
        problems.append(f"ledger key(s) twice: {[k for k, _ in twice][:3]}")
    accepted = Counter(c["orderId"] for c in world.confirmations if c.get("accepted"))
    if confirmed_twice := [o for o in found.shipped if accepted[o] > 1]:
        problems.append(f"shipment(s) confirmed twice: {confirmed_twice[:3]}")
    found.invariant_checks += 1
    found.problems.extend(f"{when}: {problem}" for problem in problems)


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
    _count(daemon, found)
    found.feeds_held = sum(feed.held for feed in world.catalog.feeds.feeds.values())
    reasons = await daemon.store.read(lambda session: session.execute(
        select(SubmissionRow.result).where(SubmissionRow.state == "failed")).scalars().all())
    found.feeds_given_up = sum(str((r or {}).get("failed_reason")).startswith("stuck")
                               for r in reasons)
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
    await _invariants(daemon, world, found, buyer_texts, "at the end")
    found.problems = sorted(set(problems))
