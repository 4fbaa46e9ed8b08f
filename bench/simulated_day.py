"""A simulated day: 12 marketplaces, ~5,000 orders, the default schedule, local stock changes.

Prints the SP-API calls per operation (from the simulator's call log), the 429s (the
simulator's log and the daemon's own counter; target 0), and the calls made against
what the usage plans allow:

* the daily **cap** per account: ``rate × 86,400 + burst`` (a regional account shares
  one bucket per operation across its marketplaces);
* for ``searchOrders``, the **minimum** an importer on the default schedule (one run per
  account every ``IMPORT_EVERY`` seconds, derived from the usage plan) needs: per account
  and window of that length, one call, plus one per 100 orders that changed in that
  window (one call names every marketplace of the account);
* for ``patchListingsItem``, the minimum for the stock changes made: quantity is per SKU
  and region, so one patch per changed SKU and account suffices.

It also measures how late new orders reach the store (first seen in a ``LOOK_EVERY``
poll of the store minus the moment the simulator made them visible), because a governor that avoids 429s
by queueing shows up there.

    .venv/bin/python bench/simulated_day.py [--quick] [--database URL]
"""

from __future__ import annotations

import math
import random
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import trio
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from marketsync.core.domain import inventory  # noqa: E402
from marketsync.core.store.models import Order  # noqa: E402
from marketsync.plugins.amazon.manifest import INFO  # noqa: E402

REGIONS = {"NA": ["US", "CA", "MX", "BR"], "EU": ["UK", "DE", "FR", "IT", "ES", "NL"],
           "FE": ["JP", "AU"]}
#: orders per day by marketplace; sums to 5,000 (the generator varies each by ±30 %)
ORDERS = {"US": 1500, "CA": 300, "MX": 200, "BR": 150, "UK": 700, "DE": 900, "FR": 400,
          "IT": 300, "ES": 250, "NL": 100, "JP": 150, "AU": 50}
#: the default import_orders period (manifest: from searchOrders' usage plan, one run per
#: account for all its marketplaces)
IMPORT_EVERY = next(job.every for job in INFO.jobs if job.kind == "import_orders")
#: 4 simulated hours take ~3 min of CPU here (a whole day ~18 min, beyond the 10-minute
#: budget for a run); ``--hours 24`` runs the day, the docs extrapolate from 4 h.
FULL = {"hours": 4, "scale": 1.0, "mfn": 150, "fba": 50}
QUICK = {"hours": 0.5, "scale": 1.0, "mfn": 40, "fba": 10}
LOOK_EVERY = 15.0  #: seconds between two looks at the store for new orders
STOCK_EVERY = 1800.0  #: a local stock change every 30 simulated minutes …
STOCK_SKUS = 5  #: … of this many SKUs


def _stored_orders(session) -> set[str]:
    return set(session.execute(select(Order.channel_order_id)).scalars())


def _set_many(session, quantities: dict[str, int]) -> None:
    for sku, quantity in quantities.items():
        inventory.set_on_hand(session, sku, quantity, note="bench: stocktake")


def search_orders_minimum(world, start, end) -> dict[str, int]:
    """Per account: Σ over ``IMPORT_EVERY`` windows of max(1, ⌈orders changed in it / 100⌉).

    An order "changes" at each event of its timeline and each shipment, visible after its
    data lag; every change must be read once after it happens."""
    windows: dict[str, Counter] = defaultdict(Counter)
    for order in world.orders.values():
        moments = {at for at, _ in order.events} | {p["at"] for p in order.packages}
        seen = set()
        for at in moments:
            visible = at + order.lag
            if start <= visible < end:
                seen.add(int((visible - start).total_seconds() // IMPORT_EVERY))
        for window in seen:
            windows[order.seller_id][window] += 1
    runs = int(math.ceil((end - start).total_seconds() / IMPORT_EVERY))
    return {seller: sum(max(1, math.ceil(windows[seller][w] / 100)) for w in range(runs))
            for seller in (common.SELLERS[r] for r in REGIONS)}


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0], lambda p: p.add_argument(
        "--hours", type=float, default=None,
        help="simulated hours (default 4; --quick 0.5; 24 for the whole day)"))
    shape = dict(QUICK if args.quick else FULL)
    if args.hours:
        shape["hours"] = args.hours
    common.header("a simulated day: 12 marketplaces, default schedule", args)
    log_counter = common.quiet_logging()
    timer = common.WallTimer()
    codes = [c for cs in REGIONS.values() for c in cs]
    items = (common.catalog(shape["mfn"], codes, quantity=5000)
             + common.catalog(shape["fba"], codes, prefix="FBA", quantity=20000, fba=True))
    mfn_skus = [i["sku"] for i in items if "mfn_quantity" in i]
    per_day = {code: n * shape["scale"] for code, n in ORDERS.items()}
    duration = shape["hours"] * 3600.0
    figures: dict = {}

    with common.workdir() as workdir, common.database(args.database, workdir) as url:
        async def run() -> None:
            world = common.World(common.scenario(REGIONS, items, orders_per_day=per_day,
                                                 fba_share=0.25, channel_edits_per_day=2),
                                 base_url=common.SANDBOX)
            daemon = common.make_daemon(world, common.config_text(
                REGIONS, settings="    history_days: 1"), url, workdir)
            rng = random.Random(5000)
            first_seen: dict[str, float] = {}
            stock_changes: list[set[str]] = []
            began = trio.current_time()
            start = common.clock.now()

            async def watch_orders() -> None:
                while True:
                    for order_id in await daemon.store.read(_stored_orders):
                        first_seen.setdefault(order_id, trio.current_time() - began)
                    await trio.sleep(LOOK_EVERY)

            async def change_stock() -> None:
                await trio.sleep(STOCK_EVERY / 2)  # at :15 and :45, off the hour's reports
                while True:
                    chosen = rng.sample(mfn_skus, STOCK_SKUS)
                    await daemon.store.run(_set_many, {s: rng.randint(100, 3000) for s in chosen})
                    daemon.stock_changed()
                    stock_changes.append(set(chosen))
                    await trio.sleep(STOCK_EVERY)

            async with common.serving(daemon):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch_orders)
                    nursery.start_soon(change_stock)
                    remaining = duration
                    while remaining > 0:
                        step = min(3600.0, remaining)
                        await trio.sleep(step)
                        remaining -= step
                        print(f"  {(duration - remaining) / 3600:4.1f} h: {len(world.orders)} "
                              f"orders at Amazon, {len(first_seen)} stored; "
                              f"{timer.seconds:.0f} real s", flush=True)
                    nursery.cancel_scope.cancel()
            end = start + timedelta(seconds=duration)
            delays = [first_seen[o.order_id] - ((o.created + o.lag) - start).total_seconds()
                      for o in world.orders.values()
                      if o.order_id in first_seen and o.created >= start]
            figures.update(
                world_calls=common.calls_by_operation(world),
                throttled=dict(daemon.stats.throttled),
                valve_trips=sum(daemon.stats.valve_trips.values()),
                orders=sum(1 for o in world.orders.values() if start <= o.created < end),
                visible=sum(1 for o in world.orders.values()
                            if o.created + o.lag <= end - timedelta(minutes=2)),
                stored=len(first_seen), delays=delays,
                minimum=search_orders_minimum(world, start, end),
                stock_changes=stock_changes,
                jobs_failed=Counter(k for (_, k, ok), n in daemon.stats.jobs.items()
                                    if not ok for _ in range(n)))

        common.run(run, args.threshold)

    report(figures, duration)
    common.footer(timer, log_counter)


def report(figures: dict, duration: float) -> None:
    calls: Counter = figures["world_calls"]
    accounts = len(REGIONS)
    print()
    print(f"orders created during the run: {figures['orders']}; stored: {figures['stored']}")
    delays = figures["delays"]
    print(f"new order → stored ({LOOK_EVERY:.0f} s looks): p50 {common.percentile(delays, 50):.0f} s, "
          f"p95 {common.percentile(delays, 95):.0f} s, max {max(delays, default=math.nan):.0f} s")
    print(f"HTTP 429: simulator {sum(n for (_, s), n in calls.items() if s == 429)}, "
          f"daemon counted {sum(figures['throttled'].values())} {figures['throttled'] or ''}")
    print(f"failed job runs: {dict(figures['jobs_failed']) or 'none'}")
    print(f"stock pushes held by the safety valve (trips): {figures['valve_trips']}")
    print()
    print(f"{'operation':<30} {'2xx':>7} {'other':>6} {'cap in the run (3 accounts)':>27} {'use':>6}")
    by_op: dict[str, Counter] = defaultdict(Counter)
    for (operation, status), count in calls.items():
        by_op[operation]["ok" if status < 300 else "other"] += count
    for operation in sorted(by_op):
        plan = INFO.usage_plans.get(operation)
        cap = (plan.rate * duration + plan.burst) * accounts if plan else None
        made = by_op[operation]["ok"] + by_op[operation]["other"]
        print(f"{operation:<30} {by_op[operation]['ok']:>7} {by_op[operation]['other']:>6} "
              f"{(f'{cap:.0f}' if cap else '-'):>27} "
              f"{(f'{made / cap:.0%}' if cap else ''):>6}")
    minimum = sum(figures["minimum"].values())
    made = by_op["searchOrders"]["ok"] + by_op["searchOrders"]["other"]
    print()
    print(f"searchOrders: made {made}; minimum on the {IMPORT_EVERY:.0f}-second schedule "
          f"{minimum} ({', '.join(f'{s}={n}' for s, n in figures['minimum'].items())}); "
          f"ratio {made / minimum:.2f}×; {made / accounts / (duration / 3600):.1f} calls "
          f"per account-hour (the plan allows {INFO.usage_plans['searchOrders'].rate * 3600:.1f})")
    volume = math.ceil(figures["orders"] / 100)
    print(f"              (pure volume: {figures['orders']} orders at 100 per page = {volume} calls)")
    changed = sum(len(c) for c in figures["stock_changes"])
    print(f"local stock changes: {len(figures['stock_changes'])} × {STOCK_SKUS} SKUs; orders "
          f"also move stock, so patchListingsItem ({by_op['patchListingsItem']['ok']}) covers both; "
          f"the local changes alone need ≥ {changed * accounts} patches (one per SKU and account)")


if __name__ == "__main__":
    main()
