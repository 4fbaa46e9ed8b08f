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
3. **A simulated day of both** (``--hours``): both simulators generate orders; reported are
   the calls against each eBay daily quota, throttled calls on both channels, and the most
   revisions any eBay listing got in a day.

    .venv/bin/python bench/ebay_cross_channel.py [--quick] [--database URL] [--rounds N]
                                                 [--hours H]
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from marketsync.core import clock  # noqa: E402
from marketsync.core.config.schema import parse_config  # noqa: E402
from marketsync.core.domain import inventory  # noqa: E402
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


async def latency_rounds(daemon, amazon, ebay, skus, rounds: int, gap: float, rng) -> dict:
    ebay_to_amazon, amazon_to_ebay, missing = [], [], 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=amazon_app(amazon)),
                                 base_url=common.SANDBOX) as control:
        for _ in range(rounds):
            await trio.sleep(rng.uniform(0, gap))
            sku = rng.choice(skus)
            before = amazon_quantity(amazon, sku)
            ebay.sell(EBAY_USER, sku, 1)
            try:
                ebay_to_amazon.append(await common.wait_until(
                    lambda: amazon_quantity(amazon, sku) == (before[0] - 1, before[1] - 1),
                    every=1.0, limit=1800, what=f"eBay sale of {sku} on Amazon"))
            except TimeoutError:
                missing += 1
            sku = rng.choice(skus)
            offer = ebay.offers[EBAY_USER][sku]
            before_offer = offer.available
            placed = await control.post("/_sandbox/orders", json={
                "marketplace": "DE", "items": {sku: 1}, "fulfilledBy": "MERCHANT"})
            if placed.status_code != 201:
                missing += 1
                continue
            try:
                amazon_to_ebay.append(await common.wait_until(
                    lambda: offer.available == before_offer - 1, every=1.0, limit=3600,
                    what=f"Amazon sale of {sku} on eBay"))
            except TimeoutError:
                missing += 1
    return {"ebay_to_amazon": ebay_to_amazon, "amazon_to_ebay": amazon_to_ebay,
            "missing": missing}


def show(name: str, values: list[float]) -> None:
    if not values:
        print(f"{name}: no sample")
        return
    print(f"{name}: n={len(values)} p50 {common.percentile(values, 50):.0f} s, "
          f"p95 {common.percentile(values, 95):.0f} s, max {max(values):.0f} s")


async def main(args) -> None:
    count = 30 if args.quick else 200
    rounds = args.rounds or (8 if args.quick else 40)
    hours = args.hours if args.hours is not None else (1 if args.quick else 6)
    items = common.catalog(count, ["US", "UK", "DE"], quantity=1000)
    skus = [item["sku"] for item in items]
    amazon = common.World(common.scenario(REGIONS, items), base_url=common.SANDBOX)
    ebay = ebay_world(skus, {})
    rng = random.Random(1515)
    with common.workdir() as workdir, common.database(args.database, workdir) as url:
        daemon = make_daemon(amazon, ebay, url, workdir)
        async with common.serving(daemon):
            await trio.sleep(1800)  # first imports: products and orders of every integration
            listed = await daemon.store.read(
                lambda s: sum(1 for sku in skus if inventory.stock_level(s, sku).available))
            print(f"setup: {count} SKUs on Amazon US+UK+DE and eBay (US or GB); "
                  f"{listed} with stock after the first imports")
            figures = await latency_rounds(daemon, amazon, ebay, skus, rounds, args.gap, rng)
            show("eBay sale → every Amazon listing applied (simulated)", figures["ebay_to_amazon"])
            show("Amazon DE sale → eBay offer applied (simulated)", figures["amazon_to_ebay"])
            print(f"rounds not completed: {figures['missing']}")
            # a day of both channels selling
            amazon.scenario.generator.orders_per_day.update({"US": 120, "UK": 60, "DE": 80}) \
                if hasattr(amazon.scenario, "generator") else None
            ebay.scenario.orders_per_day.update({(EBAY_USER, "EBAY_US"): 150,
                                                 (EBAY_USER, "EBAY_GB"): 60})
            started = clock.now()
            ebay.generate_from(started)
            await trio.sleep(hours * 3600)
        usage = Counter()
        for (client, api, day), used in ebay.usage.items():
            usage[api] += used
        print(f"simulated {hours:g} h of both channels selling (eBay 150 US + 60 GB orders a "
              f"day; Amazon's generator from its next planned day):")
        for api, used in sorted(usage.items()):
            print(f"  eBay {api}: {used} calls of {ebay.scenario.quotas[api]:,} a day")
        ebay_429 = sum(1 for c in ebay.calls if c.status == 429)
        amazon_429 = sum(1 for c in amazon.calls if c.status == 429)
        most = max(ebay.revisions.values(), default=0)
        print(f"  throttled calls: eBay {ebay_429}, Amazon {amazon_429}; most revisions of one "
              f"eBay listing in a day: {most} (limit {ebay.scenario.revision_limit})")
        ebay_orders = sum(len(o) for o in ebay.orders.values())
        print(f"  eBay orders placed {ebay_orders}; Amazon calls since the day began "
              f"{sum(1 for c in amazon.calls if c.at >= started)}")


if __name__ == "__main__":
    def extra(parser):
        parser.add_argument("--rounds", type=int, default=None)
        parser.add_argument("--gap", type=float, default=300.0,
                            help="simulated seconds between rounds (random up to this)")
        parser.add_argument("--hours", type=float, default=None)

    arguments = common.arguments(__doc__.splitlines()[0], extra)
    common.header("eBay ⇄ Amazon: one stock figure across two channels", arguments)
    timer, counter = common.WallTimer(), common.quiet_logging()
    common.run(lambda: main(arguments), threshold=arguments.threshold)
    common.footer(timer, counter)
