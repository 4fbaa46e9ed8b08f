"""Two channels, one stock figure: eBay sale → every Amazon quantity, and back; a day of both.

Issue 15's benchmark. The whole daemon with the Amazon and eBay plugins runs against both
in-process simulators (as tests/e2e/test_ebay_with_amazon.py), under MockClock with the
ThreadGuard of ``common.py``, so simulated seconds are the daemon's own waiting
(schedules, debounce, governor, the channels' processing), not local CPU.

1. **eBay sale → Amazon**: every ``--gap`` simulated seconds one unit of a random SKU sells
   on eBay; measured until the Amazon simulator holds the lowered quantity on every
   listing of the SKU (US account and EU account, which lists it in UK and DE).
2. **Amazon sale → eBay**: one merchant-fulfilled unit sells on Amazon DE; measured until
   the eBay offer holds the lowered quantity. Bound: Amazon's order latency (its data lag
   of 1-2 min plus searchOrders' one call per three minutes) plus the eBay push.
3. **A simulated day of both** (``--hours``, default 24): both simulators generate orders
   from the start (Amazon US/UK/DE, eBay US/GB) while rounds 1 and 2 run during the day
   (one pair every ``--gap`` seconds at most). Reported: the calls against each eBay daily
   quota per Pacific day, Amazon's calls per operation against its usage plans, throttled
   calls on both channels, the most revisions any eBay listing got in a day (and pushes
   held at the budget), and the latencies.

Under concurrent generated sales a probe's SKU may also sell meanwhile, so a probe waits
until the quantity is *at most* the expected one (a rare collision can shorten a sample).
``--orders-scope site`` runs eBay's order import per site, as before issue 15's
account-scoped job, to measure what one call per account saves.

    .venv/bin/python bench/ebay_cross_channel.py [--quick] [--database URL] [--rounds N]
                                                 [--hours H] [--orders-scope account|site]
"""

from __future__ import annotations

import math
import random
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import httpx
import trio
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from marketsync.core import clock  # noqa: E402
from marketsync.core.config.schema import parse_config  # noqa: E402
from marketsync.core.domain import inventory  # noqa: E402
from marketsync.core.store.models import Listing  # noqa: E402
from marketsync.plugins.amazon.manifest import INFO as AMAZON  # noqa: E402
from marketsync.plugins.ebay import manifest as ebay_manifest  # noqa: E402
from marketsync.core.runtime import plugins as plugin_loading  # noqa: E402
from marketsync.core.runtime.daemon import Daemon  # noqa: E402
from marketsync.core.store import Store  # noqa: E402
from marketsync.plugins.amazon.sandbox import create_app as amazon_app  # noqa: E402
from marketsync.plugins.ebay.sandbox import World as EbayWorld  # noqa: E402
from marketsync.plugins.ebay.sandbox import create_app as ebay_app  # noqa: E402
from marketsync.plugins.ebay.sandbox import parse_scenario as ebay_scenario  # noqa: E402

REGIONS = {"NA": ["US"], "EU": ["UK", "DE"]}
EBAY = "http://ebay-sandbox.local"
EBAY_CLIENT, EBAY_SECRET = "marketsy-bench-PRD-3333333333-33333333", "PRD-bench-secret"
EBAY_REFRESH = "v^1.1#i^1#r^1#bench-refresh"
EBAY_USER = "bench-ebay-seller"
#: orders a day during the simulated day, by site / marketplace
EBAY_ORDERS = {"US": 150, "GB": 60}
AMAZON_ORDERS = {"US": 120, "UK": 60, "DE": 80}


def ebay_world(skus: list[str], orders_per_day: dict[str, float]) -> EbayWorld:
    """The same SKUs offered on eBay US (two thirds) and eBay UK (one third)."""
    catalog = [{"sku": sku, "marketplace": "EBAY_US" if n % 3 else "EBAY_GB",
                "title": f"Bench item {n}", "quantity": 1000, "price": "19.99"}
               for n, sku in enumerate(skus)]
    return EbayWorld(ebay_scenario({
        "seed": 15, "history_days": 0,
        "applications": [{"client_id": EBAY_CLIENT, "client_secret": EBAY_SECRET,
                          "ru_name": "bench-ru"}],
        "accounts": [{"user_id": EBAY_USER, "marketplaces": ["EBAY_US", "EBAY_GB"],
                      "refresh_tokens": [EBAY_REFRESH]}],
        "catalog": catalog, "generator": {"orders_per_day": orders_per_day,
                                          "cancel_share": 0.03}}, source="bench"),
        base_url=EBAY)


def make_daemon(amazon, ebay, store_url: str, workdir: Path) -> Daemon:
    yaml_text = common.config_text(REGIONS)
    accounts, integrations = yaml_text.split("integrations:\n")
    accounts += "\n".join(["  shop:", "    channel: ebay", f"    endpoint: {EBAY}",
                           "    credentials:", f"      client_id: {EBAY_CLIENT}",
                           "      client_secret: ${BENCH_EBAY_SECRET}",
                           "      refresh_token: ${BENCH_EBAY_REFRESH}"]) + "\n"
    integrations += "\n".join(["  - alias: ebay-us", "    account: shop", "    marketplace: US",
                               "    review_first_push: false",
                               "  - alias: ebay-gb", "    account: shop",
                               "    marketplace: GB", "    review_first_push: false"]) + "\n"
    plugins = plugin_loading.build(
        builtin=(*plugin_loading.DEFAULT_PLUGINS, "marketsync.plugins.ebay"),
        load_entry_points=False)
    config = parse_config(accounts + "integrations:\n" + integrations, plugins.infos(),
                          filename=str(workdir / "marketsync.yaml"),
                          environ={**common.ENV, "BENCH_EBAY_SECRET": EBAY_SECRET,
                                   "BENCH_EBAY_REFRESH": EBAY_REFRESH})
    apps = {"shop": ebay_app(ebay)}
    amazon_asgi = amazon_app(amazon)
    return Daemon(config, plugins=plugins, store=Store(store_url),
                  transport_factory=lambda account: httpx.ASGITransport(
                      app=apps.get(account, amazon_asgi)))


def amazon_quantity(world, sku: str) -> tuple[int, int]:
    return tuple(world.catalog.view(common.SELLERS[r])[sku]["quantity"] for r in ("NA", "EU"))


async def latency_rounds(daemon, amazon, ebay, skus, rounds: int, gap: float, rng,
                         figures: dict) -> None:
    """Probe both directions ``rounds`` times; samples go into ``figures`` as they come, so a
    run cancelled at the day's end keeps the finished ones."""
    ebay_to_amazon, amazon_to_ebay = figures["ebay_to_amazon"], figures["amazon_to_ebay"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=amazon_app(amazon)),
                                 base_url=common.SANDBOX) as control:
        for _ in range(rounds):
            await trio.sleep(rng.uniform(0, gap))
            sku = rng.choice(skus)
            before = amazon_quantity(amazon, sku)
            ebay.sell(EBAY_USER, sku, 1)
            try:
                ebay_to_amazon.append(await common.wait_until(
                    lambda: all(now <= was - 1 for now, was
                                in zip(amazon_quantity(amazon, sku), before)),
                    every=1.0, limit=1800, what=f"eBay sale of {sku} on Amazon"))
            except TimeoutError:
                figures["missing"] += 1
            sku = rng.choice(skus)
            offer = ebay.offers[EBAY_USER][sku]
            before_offer = offer.available
            placed = await control.post("/_sandbox/orders", json={
                "marketplace": "DE", "items": {sku: 1}, "fulfilledBy": "MERCHANT"})
            if placed.status_code != 201:
                figures["missing"] += 1
                continue
            try:
                amazon_to_ebay.append(await common.wait_until(
                    lambda: offer.available <= before_offer - 1, every=1.0, limit=3600,
                    what=f"Amazon sale of {sku} on eBay"))
            except TimeoutError:
                figures["missing"] += 1


def show(name: str, values: list[float]) -> None:
    if not values:
        print(f"{name}: no sample")
        return
    print(f"{name}: n={len(values)} p50 {common.percentile(values, 50):.0f} s, "
          f"p95 {common.percentile(values, 95):.0f} s, max {max(values):.0f} s")


def per_site_orders() -> None:
    """eBay's order import as before issue 15: one job per site (for the comparison)."""
    jobs = tuple(replace(job, scope="integration") if job.kind == "import_orders" else job
                 for job in ebay_manifest.JOBS)
    ebay_manifest.INFO = replace(ebay_manifest.INFO, jobs=jobs)


def held_listings(session) -> int:
    return sum(1 for error in session.execute(select(Listing.push_error)).scalars()
               if error and error.startswith("held:"))


async def main(args) -> None:
    count = 30 if args.quick else 200
    hours = args.hours if args.hours is not None else (2 if args.quick else 24)
    rounds = args.rounds if args.rounds is not None else max(1, int(hours * 3600 // args.gap))
    if args.orders_scope == "site":
        per_site_orders()
    items = common.catalog(count, ["US", "UK", "DE"], quantity=1000)
    skus = [item["sku"] for item in items]
    amazon = common.World(common.scenario(REGIONS, items, orders_per_day=AMAZON_ORDERS,
                                          fba_share=0.0), base_url=common.SANDBOX)
    ebay = ebay_world(skus, {})
    rng = random.Random(1515)
    with common.workdir() as workdir, common.database(args.database, workdir) as url:
        daemon = make_daemon(amazon, ebay, url, workdir)
        async with common.serving(daemon):
            await trio.sleep(1800)  # first imports: products and orders of every integration
            listed = await daemon.store.read(
                lambda s: sum(1 for sku in skus if inventory.stock_level(s, sku).available))
            print(f"setup: {count} SKUs on Amazon US+UK+DE and eBay (US or GB); "
                  f"{listed} with stock after the first imports", flush=True)
            ebay.scenario.orders_per_day.update({(EBAY_USER, f"EBAY_{code}"): n
                                                 for code, n in EBAY_ORDERS.items()})
            started, began = clock.now(), trio.current_time()
            ebay.generate_from(started)
            figures: dict = {"ebay_to_amazon": [], "amazon_to_ebay": [], "missing": 0}

            async def probes() -> None:
                await latency_rounds(daemon, amazon, ebay, skus, rounds, args.gap, rng, figures)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(probes)
                for hour in range(1, int(math.ceil(hours)) + 1):
                    await trio.sleep(min(3600.0, hours * 3600 - (trio.current_time() - began)))
                    print(f"  {hour:>2} h: eBay orders {sum(len(o) for o in ebay.orders.values())}, "
                          f"Amazon orders {len(amazon.orders)}; {timer.seconds:.0f} real s, "
                          f"{common.cpu_seconds():.0f} CPU s", flush=True)
                nursery.cancel_scope.cancel()
            held = await daemon.store.read(held_listings)
        ended = clock.now()
    print()
    show("eBay sale → every Amazon listing applied (simulated)", figures["ebay_to_amazon"])
    show("Amazon DE sale → eBay offer applied (simulated)", figures["amazon_to_ebay"])
    print(f"probes that timed out: {figures['missing']} (a probe still waiting when the day "
          f"ended is not counted)")
    report(amazon, ebay, started, ended, held, args.orders_scope)


def report(amazon, ebay, started, ended, held: int, scope: str) -> None:
    hours = (ended - started).total_seconds() / 3600
    print(f"simulated {hours:g} h of both channels selling (eBay {EBAY_ORDERS} orders a day, "
          f"Amazon {AMAZON_ORDERS}); eBay orders import per {scope}")
    per_day: dict = defaultdict(Counter)
    for (client, api, day), used in ebay.usage.items():
        per_day[day][api] += used
    for day in sorted(per_day):
        print(f"  eBay quota day {day} (Pacific): " + ", ".join(
            f"{api} {used:,} of {ebay.scenario.quotas[api]:,}"
            for api, used in sorted(per_day[day].items())))
    get_orders = [c for c in ebay.calls if c.operation == "getOrders" and c.at >= started]
    print(f"  eBay getOrders during the day: {len(get_orders)} ({len(get_orders) / hours:.1f} "
          f"an hour) for 1 account on 2 sites")
    calls = Counter(c.operation for c in amazon.calls if c.at >= started)
    accounts = len(REGIONS)
    seconds = (ended - started).total_seconds()
    print(f"  Amazon calls during the day by operation (cap = plan rate × time + burst, "
          f"× {accounts} accounts):")
    for operation, made in sorted(calls.items()):
        plan = AMAZON.usage_plans.get(operation)
        cap = (plan.rate * seconds + plan.burst) * accounts if plan else None
        print(f"    {operation:<32} {made:>7}" + (f"  of {cap:,.0f} ({made / cap:.1%})" if cap else ""))
    ebay_429 = sum(1 for c in ebay.calls if c.status == 429)
    amazon_429 = sum(1 for c in amazon.calls if c.status == 429)
    most = max(ebay.revisions.values(), default=0)
    print(f"  throttled calls (429): eBay {ebay_429}, Amazon {amazon_429}")
    print(f"  most revisions of one eBay listing in a Pacific day: {most} (eBay's limit "
          f"{ebay.scenario.revision_limit}; our budget 240); listings held at the budget: {held}")
    ebay_orders = sum(1 for orders in ebay.orders.values() for o in orders.values())
    amazon_orders = sum(1 for o in amazon.orders.values() if o.created >= started)
    print(f"  orders placed: eBay {ebay_orders}, Amazon {amazon_orders} (in the day)")


if __name__ == "__main__":
    def extra(parser):
        parser.add_argument("--rounds", type=int, default=None)
        parser.add_argument("--gap", type=float, default=300.0,
                            help="simulated seconds between rounds (random up to this)")
        parser.add_argument("--hours", type=float, default=None,
                            help="simulated hours of both selling (default 24; --quick 2)")
        parser.add_argument("--orders-scope", choices=("account", "site"), default="account")

    arguments = common.arguments(__doc__.splitlines()[0], extra)
    common.header("eBay ⇄ Amazon: one stock figure across two channels", arguments)
    timer, counter = common.WallTimer(), common.quiet_logging()
    common.run(lambda: main(arguments), threshold=arguments.threshold)
    common.footer(timer, counter)
