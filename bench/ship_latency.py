"""Shipment recorded locally → confirmed at Amazon: p50/p95 in simulated seconds.

Issue 11's target is p95 ≤ 60 s on the simulator (one try once took 94 s). The whole
daemon runs against the simulator: one EU account selling in UK and DE and one NA account
in the US, merchant orders arriving all the time (so imports, stock pushes and their
feeds compete with the confirmations for the daemon's jobs and Amazon's rate limits).
After a first hour, rounds at random moments ship 1–20 stored, still-New merchant orders
in one unit of work (as ``orders ship`` or a ``ship-import`` CSV does) and then do what
the CLI does next: ask the running daemon to run ``confirm_shipment`` now
(``Daemon.nudge``, behind ``POST /local-change``). A shipment counts as confirmed at the
first simulated second the simulator holds an accepted ``confirmShipment`` for its order
(polled every second).

``--no-nudge`` leaves the confirmation to the job's schedule (every 120 s), which is what
a shipment recorded while no daemon listens, or by a tool that does not nudge, waits for.

    .venv/bin/python bench/ship_latency.py [--quick] [--database URL] [--shipments N]
                                           [--no-nudge]
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import trio
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from marketsync.core.domain import orders  # noqa: E402
from marketsync.core.store.models import Order  # noqa: E402
from marketsync.core.types import Fulfillment, OrderStatus  # noqa: E402

REGIONS = {"EU": ["UK", "DE"], "NA": ["US"]}
ORDERS_PER_DAY = {"UK": 1500, "DE": 1500, "US": 2000}
FULL = {"shipments": 300, "skus": 200}
QUICK = {"shipments": 40, "skus": 50}
#: how many orders one round ships together (a person at the packing table, or a CSV)
ROUND_SIZES = [1, 1, 1, 1, 2, 3, 5, 20]
ROUND_GAP = (20.0, 180.0)  #: simulated seconds between two rounds
WARM_UP = 3600.0  #: first imports and an hour of business before the first shipment
LIMIT = 1800.0  #: a shipment not confirmed after this long is reported as stuck


def _new_merchant_orders(session, exclude: set[str]) -> list[tuple[int, str]]:
    return [(oid, channel_id) for oid, channel_id in session.execute(
        select(Order.id, Order.channel_order_id).where(
            Order.fulfillment == Fulfillment.MFN, Order.status == OrderStatus.NEW)
        .order_by(Order.id)).all() if channel_id not in exclude]


def _unshipped_at_amazon(world, order_id: str) -> bool:
    """Amazon has the order as Unshipped now (a Pending one cannot be shipped yet: the
    seller's tools show it as not payable, and Amazon refuses its confirmation)."""
    order = world.orders.get(order_id)
    now = world.now()
    states = [status for at, status in order.events if at <= now] if order else []
    return bool(states) and states[-1] == "UNSHIPPED"


def _ship_all(session, chosen: list[int], number: int) -> None:
    for offset, order_id in enumerate(chosen):
        orders.ship_order(session, order_id, carrier="DHL",
                          tracking_number=f"BENCH{number:05d}{offset:03d}")


def main() -> None:
    def options(parser):
        parser.add_argument("--shipments", type=int, help="how many orders to ship in all")
        parser.add_argument("--no-nudge", action="store_true",
                            help="do not ask the daemon to confirm now (its schedule only)")

    args = common.arguments(__doc__.splitlines()[0], options)
    shape = dict(QUICK if args.quick else FULL)
    if args.shipments:
        shape["shipments"] = args.shipments
    common.header("shipment recorded locally → confirmed at Amazon", args)
    log_counter = common.quiet_logging()
    timer = common.WallTimer()
    codes = [c for cs in REGIONS.values() for c in cs]
    items = common.catalog(shape["skus"], codes, quantity=100_000)
    figures: dict = {}

    with common.workdir() as workdir, common.database(args.database, workdir) as url:
        async def run() -> None:
            world = common.World(common.scenario(REGIONS, items, orders_per_day=ORDERS_PER_DAY,
                                                 fba_share=0.0),
                                 base_url=common.SANDBOX)
            daemon = common.make_daemon(world, common.config_text(REGIONS), url, workdir)
            rng = random.Random(6060)
            shipped_at: dict[str, float] = {}
            confirmed_at: dict[str, float] = {}
            rounds: list[int] = []

            async def watch() -> None:
                seen = 0
                while True:
                    for record in world.confirmations[seen:]:
                        order_id = record["orderId"]
                        if (record.get("accepted") and order_id in shipped_at
                                and order_id not in confirmed_at):
                            confirmed_at[order_id] = trio.current_time()
                    seen = len(world.confirmations)
                    await trio.sleep(1.0)

            async with common.serving(daemon):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch)
                    await trio.sleep(WARM_UP)
                    while len(shipped_at) < shape["shipments"]:
                        await trio.sleep(rng.uniform(*ROUND_GAP))
                        size = min(rng.choice(ROUND_SIZES), shape["shipments"] - len(shipped_at))
                        candidates = [c for c in await daemon.store.read(
                            _new_merchant_orders, set(shipped_at))
                            if _unshipped_at_amazon(world, c[1])]
                        if len(candidates) < size:
                            continue
                        chosen = rng.sample(candidates, size)
                        await daemon.store.run(_ship_all, [oid for oid, _ in chosen],
                                               len(rounds))
                        now = trio.current_time()
                        for _, channel_id in chosen:
                            shipped_at[channel_id] = now
                        if not args.no_nudge:
                            daemon.nudge(["confirm_shipment"])
                        rounds.append(size)
                    with trio.move_on_after(LIMIT):
                        while len(confirmed_at) < len(shipped_at) - len(
                                {c["orderId"] for c in world.confirmations
                                 if not c.get("accepted") and c["orderId"] not in confirmed_at}):
                            await trio.sleep(5)
                    nursery.cancel_scope.cancel()
            figures.update(
                delays=[confirmed_at[o] - shipped_at[o] for o in confirmed_at],
                shipped=len(shipped_at), rounds=rounds,
                calls=common.calls_by_operation(world),
                refused_orders=len({c["orderId"] for c in world.confirmations
                                    if not c.get("accepted") and c["orderId"] in shipped_at
                                    and c["orderId"] not in confirmed_at}),
                throttled=dict(daemon.stats.throttled),
                refused=sum(1 for c in world.confirmations if not c.get("accepted")),
                jobs_failed=Counter(k for (_, k, ok), n in daemon.stats.jobs.items()
                                    if not ok for _ in range(n)))

        common.run(run, args.threshold)

    delays = figures["delays"]
    calls: Counter = figures["calls"]
    print()
    stuck = figures["shipped"] - len(delays) - figures["refused_orders"]
    print(f"shipments: {figures['shipped']} in {len(figures['rounds'])} rounds "
          f"(sizes {dict(sorted(Counter(figures['rounds']).items()))}); "
          f"{'schedule only (--no-nudge)' if args.no_nudge else 'each round nudged'}")
    print(f"recorded → confirmed at Amazon: p50 {common.percentile(delays, 50):.0f} s, "
          f"p95 {common.percentile(delays, 95):.0f} s, max {max(delays, default=float('nan')):.0f} s"
          f"; not confirmed within {LIMIT:.0f} s: {stuck}")
    print(f"confirmShipment answers not accepted: {figures['refused']} "
          f"({figures['refused_orders']} shipment(s) refused for good)")
    print(f"HTTP 429: simulator {sum(n for (_, s), n in calls.items() if s == 429)}, "
          f"daemon counted {sum(figures['throttled'].values())} {figures['throttled'] or ''}")
    print(f"failed job runs: {dict(figures['jobs_failed']) or 'none'}")
    common.footer(timer, log_counter)


if __name__ == "__main__":
    main()
