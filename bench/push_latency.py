"""Stock change → accepted by the channel: p50/p95 in simulated seconds, by batch size.

Issue 4's target is p95 ≤ 30 s for ≤ 50 changed SKUs. The whole daemon runs against the
simulator (two regional accounts, US and DE, so every SKU has two listings to update).
After the first imports, each round sets the on-hand count of N SKUs in ONE transaction
(as a stocktake import would), calls ``daemon.stock_changed()`` and measures, per listing:

* **applied**: the first simulated second at which the simulator's catalog holds the new
  quantity (Amazon accepted and applied the patch, or the feed finished), polled in
  process every ``--poll`` seconds;
* **acknowledged**: the first poll at which the daemon's store records that quantity as
  acknowledged for the current generation (what the daemon itself believes).

Both include the daemon's debounce, scheduling, governor waits and, for large batches,
the feed's queue and processing time in the simulator (30 s + 2 min by default).
The simulator generates no orders here, so nothing else moves the quantities.

Rounds with a price (``--price-sizes``, issue 11) set a new price of each chosen SKU on
both integrations in the same moment as its count: a listing counts as applied when the
simulator holds both, and the round reports how many messages each listing took: patch
calls, plus the messages of the listings feeds a large round goes out as (1 = quantity,
handling time and price in one message).

    .venv/bin/python bench/push_latency.py [--quick] [--database URL] [--poll S]
                                           [--sizes 10000x1,50x2] [--price-sizes 50x2]
                                           [--timeline]
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from decimal import Decimal
from dataclasses import dataclass, field
from pathlib import Path

import trio
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from marketsync.core import clock  # noqa: E402
from marketsync.core.domain import inventory, products  # noqa: E402
from marketsync.core.store.models import IntegrationRow  # noqa: E402
from marketsync.core.store.models import Listing, Product  # noqa: E402
from marketsync.plugins.amazon.marketplaces import MARKETPLACES  # noqa: E402

REGIONS = {"NA": ["US"], "EU": ["DE"]}
FULL = {"skus": 10_000, "sizes": [(1, 10), (50, 6), (10_000, 2)],
        "price_sizes": [(1, 10), (50, 6), (10_000, 2)]}
QUICK = {"skus": 300, "sizes": [(1, 5), (50, 3), (300, 1)], "price_sizes": [(1, 5), (50, 3)]}
ROUND_LIMIT = 3600.0  #: simulated seconds a round may take before it is reported as stuck


@dataclass
class Round:
    size: int
    applied: list[float] = field(default_factory=list)
    acknowledged: list[float] = field(default_factory=list)
    missing: int = 0
    priced: bool = False
    messages: int = 0  #: patchListingsItem calls and feed messages for the chosen SKUs
    feed_messages: int = 0  #: of which messages in JSON_LISTINGS_FEED documents
    started: object = None  #: the simulated wall time of the change (for the timeline)
    ended: object = None


def _set_many(session, quantities: dict[str, int]) -> dict[str, int]:
    """One stocktake: every SKU's on hand in one unit of work; the channel quantity each
    listing should reach (on hand minus reserved, never below zero)."""
    targets = {}
    for sku, quantity in quantities.items():
        level = inventory.set_on_hand(session, sku, quantity, note="bench")
        targets[sku] = max(level.available, 0)
    return targets


def _acknowledged(session, skus: set[str]) -> set[tuple[str, str]]:
    """(alias, sku) whose current wish the channel has acknowledged."""
    rows = session.execute(
        select(IntegrationRow.alias, Listing.channel_sku)
        .join(IntegrationRow, IntegrationRow.id == Listing.integration_id)
        .where(Listing.pushed_generation >= Listing.push_generation,
               Listing.acknowledged_quantity == Listing.wanted_quantity)).all()
    return {(alias, sku) for alias, sku in rows if sku in skus}


def _listing_counts(session) -> dict[str, int]:
    return dict(session.execute(
        select(IntegrationRow.alias, func.count(Listing.id))
        .join(IntegrationRow, IntegrationRow.id == Listing.integration_id)
        .join(Product, Product.id == Listing.product_id)
        .group_by(IntegrationRow.alias)).all())


def _set_prices(session, prices: dict[str, Decimal]) -> None:
    for integration_id in session.execute(select(IntegrationRow.id)).scalars():
        for sku, price in prices.items():
            products.set_price(session, sku, price, integration_id)


async def measure(daemon, world, skus: list[str], size: int, rng: random.Random,
                  poll: float, priced: bool = False) -> Round:
    chosen = rng.sample(skus, size)
    quantities = {sku: rng.randint(5, 500) for sku in chosen}
    prices = {sku: Decimal(rng.randint(500, 9000)) / 100 for sku in chosen} if priced else {}
    calls_before = len(world.calls)
    targets = await daemon.store.run(_set_many, quantities)
    if prices:
        await daemon.store.run(_set_prices, prices)
    daemon.stock_changed()
    changed_at = trio.current_time()
    started = clock.now()
    sellers = {f"amazon-{code.lower()}": common.SELLERS[region]
               for region, codes in REGIONS.items() for code in codes}
    waiting_applied = {(alias, sku) for alias in sellers for sku in chosen}
    waiting_ack = set(waiting_applied)
    result = Round(size=size, started=started, priced=priced)
    market = {alias: MARKETPLACES[alias.removeprefix("amazon-").upper()].id for alias in sellers}
    with trio.move_on_after(ROUND_LIMIT):
        while waiting_applied or waiting_ack:
            now = trio.current_time() - changed_at
            for alias, sku in list(waiting_applied):
                offer = world.catalog.get(sellers[alias], sku)
                price_there = (offer.marketplaces.get(market[alias]).price
                               if offer is not None and market[alias] in offer.marketplaces
                               else None)
                if (offer is not None and offer.quantity == targets[sku]
                        and (sku not in prices or price_there == prices[sku])):
                    result.applied.append(now)
                    waiting_applied.discard((alias, sku))
            if waiting_ack:
                done = await daemon.store.read(_acknowledged, {s for _, s in waiting_ack})
                result.acknowledged += [trio.current_time() - changed_at] * len(waiting_ack & done)
                waiting_ack -= done
            if waiting_applied or waiting_ack:
                await trio.sleep(poll)
    result.missing = len(waiting_applied) + len(waiting_ack)
    wanted = {f"/{sku}" for sku in chosen}
    result.messages = sum(1 for c in world.calls[calls_before:]
                          if c.operation == "patchListingsItem"
                          and c.path[c.path.rfind("/"):] in wanted)
    result.ended = clock.now()
    result.feed_messages = sum(
        1 for sku in feed_message_skus(world, result.started, result.ended) if sku in chosen)
    result.messages += result.feed_messages
    return result


def feed_message_skus(world, start, end) -> list[str]:
    """The SKU of every message of the listings feeds submitted in [start, end]: a large
    push goes as one JSON_LISTINGS_FEED per account, one message per SKU (quantity,
    handling time and price in that one message), not as patch calls."""
    skus = []
    for feed in world.catalog.feeds.feeds.values():
        if not start <= feed.created <= end:
            continue
        document = world.catalog.documents.get(feed.seller_id, feed.document_id)
        if document is None or document.content is None:
            continue
        raw = document.content
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        skus += [m.get("sku") for m in json.loads(raw).get("messages", [])]
    return skus


PUSH_OPERATIONS = ("searchListingsItems", "patchListingsItem", "createFeedDocument",
                   "createFeed", "getFeed", "getFeedDocument")


def timeline(world, result: Round) -> str:
    """Per push operation: calls, first and last second after the change (``--timeline``)."""
    spans: dict[str, list[float]] = {}
    for call in world.calls:
        if call.operation in PUSH_OPERATIONS and result.started <= call.at <= result.ended:
            spans.setdefault(call.operation, []).append((call.at - result.started).total_seconds())
    return "; ".join(f"{op} {len(t)}× {min(t):.0f}–{max(t):.0f} s"
                     for op, t in sorted(spans.items(), key=lambda item: min(item[1])))


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no values"
    return (f"{label}: n={len(values)} p50={common.percentile(values, 50):.1f}s "
            f"p95={common.percentile(values, 95):.1f}s max={max(values):.1f}s")


def main() -> None:
    def options(parser):
        parser.add_argument("--poll", type=float, default=1.0,
                            help="simulated seconds between checks")
        parser.add_argument("--timeline", action="store_true",
                            help="print when each push operation was called in every round")
        parser.add_argument("--sizes", help="rounds to run, e.g. 10000x1,50x2 (SIZExROUNDS)")
        parser.add_argument("--price-sizes",
                            help="rounds with a new price as well, e.g. 50x2 (0x0: none)")

    args = common.arguments(__doc__.splitlines()[0], options)
    shape = dict(QUICK if args.quick else FULL)
    if args.sizes:
        shape["sizes"] = [tuple(int(n) for n in part.split("x")) for part in args.sizes.split(",")]
        shape["skus"] = max(shape["skus"], max(size for size, _ in shape["sizes"]))
    if args.price_sizes:
        shape["price_sizes"] = [tuple(int(n) for n in part.split("x"))
                                for part in args.price_sizes.split(",")
                                if not part.startswith("0")]
    common.header("push latency: stock change → accepted by the channel", args)
    log_counter = common.quiet_logging()
    timer = common.WallTimer()
    items = common.catalog(shape["skus"], [c for codes in REGIONS.values() for c in codes],
                           quantity=100)
    skus = [item["sku"] for item in items]
    rounds: dict[int, list[Round]] = {}

    with common.workdir() as workdir, common.database(args.database, workdir) as url:
        async def run() -> None:
            world = common.World(common.scenario(REGIONS, items), base_url=common.SANDBOX)
            daemon = common.make_daemon(world, common.config_text(REGIONS), url, workdir)
            rng = random.Random(20261127)
            async with common.serving(daemon):
                took = await common.wait_until(
                    lambda: _imports_done(daemon, len(skus)), every=30, limit=6 * 3600,
                    what="first listing imports")
                print(f"first imports done after {took:.0f} simulated s "
                      f"({timer.seconds:.0f} real s)", flush=True)
                plan = [(size, count, False) for size, count in shape["sizes"]]
                plan += [(size, count, True) for size, count in shape["price_sizes"]]
                for size, count, priced in plan:
                    for n in range(count):
                        await trio.sleep(rng.uniform(20, 90))  # off the 15 s backstop's phase
                        result = await measure(daemon, world, skus, size, rng,
                                               args.poll if size <= 50 else max(args.poll, 5.0),
                                               priced)
                        rounds.setdefault((size, priced), []).append(result)
                        print(f"  size {size:>6}{' +price' if priced else ''} round {n + 1}: "
                              f"{summary('applied', result.applied)}; "
                              f"{summary('acknowledged', result.acknowledged)}"
                              + (f"; {result.missing} NOT DONE" if result.missing else ""),
                              flush=True)
                        if args.timeline:
                            print(f"    {timeline(world, result)}", flush=True)
            print(f"daemon 429s seen: {sum(daemon.stats.throttled.values())}; "
                  f"simulator 429s: {sum(1 for c in world.calls if c.status == 429)}")
            print("calls by operation: " + ", ".join(
                f"{op}={n}" for (op, status), n in sorted(common.calls_by_operation(world).items())
                if status < 300))

        common.run(run, args.threshold)

    print()
    print(f"{'SKUs':>6} {'price':>5} {'rounds':>6} {'listings':>8}  {'applied p50/p95':>17}  "
          f"{'acknowledged p50/p95':>22}  not done  messages per listing (of them in feeds)")
    for (size, priced), results in rounds.items():
        applied = [v for r in results for v in r.applied]
        acked = [v for r in results for v in r.acknowledged]
        per_listing = sum(r.messages for r in results) / max(len(applied), 1)
        in_feeds = sum(r.feed_messages for r in results)
        print(f"{size:>6} {'yes' if priced else 'no':>5} {len(results):>6} {len(applied):>8}  "
              f"{common.percentile(applied, 50):7.1f} / {common.percentile(applied, 95):6.1f} s  "
              f"{common.percentile(acked, 50):10.1f} / {common.percentile(acked, 95):6.1f} s  "
              f"{sum(r.missing for r in results):>8}  {per_listing:.2f} ({in_feeds})")
    common.footer(timer, log_counter)


async def _imports_done(daemon, expected: int) -> bool:
    counts = await daemon.store.read(_listing_counts)
    return len(counts) == len(daemon.runners) and all(n >= expected for n in counts.values())


if __name__ == "__main__":
    main()
