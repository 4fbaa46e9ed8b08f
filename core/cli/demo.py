"""``marketsync demo``: the whole daemon against a simulated Amazon, faster than real time.

The README's first command, so it must work on a fresh machine with nothing configured:
it serves the SP-API simulator on a loopback port, writes a configuration (secrets in
files, referenced as ``${file:...}``, as an operator would) into a throw-away directory,
and runs the real daemon and its status page on it. Simulated time runs ``--speed`` times
faster than the wall clock through the run's trio clock (:class:`DemoClock`): the
simulator and the daemon both read time from ``core.clock``, so they agree without
knowing about the speed.

What happens is read back from the database every few simulated seconds and printed as
short lines (orders, stock pushes with their latency, prices, tracking) — the store is
the truth, so the demo shows what an operator's tools would see, not a log dump.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import secrets
import shutil
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
import trio

from sqlalchemy import func, select

from marketsync.core import clock

from marketsync.core.runtime import logs
from marketsync.core.store import Store
from marketsync.core.store.models import FulfillmentOrder, Listing, Order, OrderItem
from marketsync.core.types import Fulfillment

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: simulated seconds to let imports settle before the MCF order is placed
MCF_AFTER = 300.0


class DemoClock(trio.abc.Clock):
    """Simulated time for the demo: a wait that ends on a timer is ``speed`` times shorter
    in real time; computing, and waits that end because work finished (a database thread,
    a socket), take real time.

    ``MockClock(rate=speed)`` speeds everything up: at 600x, 5 ms spent parsing a page or
    committing it in a thread counts as 3 simulated seconds, so HTTP and job timeouts fire
    that never would for real. A faster world should shorten only the waiting *for time
    to pass*. trio asks ``deadline_to_sleep_time`` exactly when it is about to wait and
    ``current_time`` when it wakes, which is all this needs. This is the one place that
    reads the real clock: it *is* the run's clock.
    """

    def __init__(self, speed: float):
        self.speed = speed
        self._virtual = 0.0
        self._real = time.perf_counter()
        self._timer: float | None = None  #: real seconds of the wait in progress

    def start_clock(self) -> None:
        self._real = time.perf_counter()

    def current_time(self) -> float:
        real = time.perf_counter()
        elapsed, self._real = real - self._real, real
        timer, self._timer = self._timer, None
        if timer is not None and elapsed >= timer:  # woken by the timer: time passed
            self._virtual += timer * self.speed + (elapsed - timer)
        else:
            self._virtual += elapsed
        return self._virtual

    def deadline_to_sleep_time(self, deadline: float) -> float:
        now = self.current_time()
        self._timer = max(0.0, (deadline - now) / self.speed)
        return self._timer


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1d`` or plain seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration; write e.g. 90s, 30m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class DemoSetup:
    directory: Path
    config_path: Path
    aliases: list[str]


def write_config(directory: Path, world, listen: str, ebay_world=None) -> DemoSetup:
    """One account per simulated seller, one integration per marketplace it sells in;
    the LWA secret and refresh tokens go to 0600 files the YAML refers to. With
    ``ebay_world`` (the eBay plugin is installed) its shop is a second channel."""
    from marketsync.plugins.amazon.marketplaces import by_id

    secrets_dir = directory / "secrets"
    secrets_dir.mkdir(mode=0o700)
    app = next(iter(world.applications.values()))
    secret_file = secrets_dir / "lwa-client-secret"
    secret_file.write_text(app.client_secret + "\n")
    secret_file.chmod(0o600)
    key_file = secrets_dir / "pii.key"
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    key_file.chmod(0o600)
    lines = [f"state_dir: {directory}", f"database: sqlite:///{directory / 'demo.sqlite'}",
             "http:", f"  listen: {listen}", "log:", "  level: WARNING",
             "pii:", f"  key: ${{file:{key_file}}}", "accounts:"]
    integrations, aliases, used = ["integrations:"], [], set()
    for number, account in enumerate(world.accounts.values(), 1):
        name = account.region.lower()
        name = name if name not in used else f"{name}{number}"
        used.add(name)
        token_file = secrets_dir / f"{name}-refresh-token"
        token_file.write_text(account.refresh_tokens[0] + "\n")
        token_file.chmod(0o600)
        lines += [f"  {name}:", "    channel: amazon", f"    endpoint: {world.base_url}",
                  "    credentials:", f"      client_id: {app.client_id}",
                  f"      client_secret: ${{file:{secret_file}}}",
                  f"      refresh_token: ${{file:{token_file}}}",
                  f"      app_id: {app.application_id}", f"      seller_id: {account.seller_id}"]
        for marketplace_id in account.marketplace_ids:
            code = by_id(marketplace_id).code
            alias = f"amazon-{code.lower()}"
            aliases.append(alias)
            # the demo shows selling from the first minute; a real connection starts
            # with its pushes held for review (`marketsync stock plan/accept`)
            integrations += [f"  - alias: {alias}", f"    account: {name}",
                             f"    marketplace: {code}", "    review_first_push: false"]
    if ebay_world is not None:
        lines, integrations = _ebay_config(secrets_dir, ebay_world, lines, integrations, aliases)
    path = directory / "marketsync.yaml"
    path.write_text("\n".join(lines + integrations) + "\n")
    return DemoSetup(directory=directory, config_path=path, aliases=aliases)


def _ebay_config(secrets_dir: Path, world, lines: list[str], integrations: list[str],
                 aliases: list[str]) -> tuple[list[str], list[str]]:
    """The simulated eBay shop as a second channel: one account, one integration per eBay
    site it sells on (codes as the eBay plugin names them: US, GB...)."""
    app = next(iter(world.apps.values()))
    secret_file = secrets_dir / "ebay-client-secret"
    secret_file.write_text(app.client_secret + "\n")
    secret_file.chmod(0o600)
    for number, account in enumerate(world.accounts.values(), 1):
        name = "ebay" if number == 1 else f"ebay{number}"
        token_file = secrets_dir / f"{name}-refresh-token"
        token_file.write_text(account.refresh_tokens[0] + "\n")
        token_file.chmod(0o600)
        lines = lines + [f"  {name}:", "    channel: ebay", f"    endpoint: {world.base_url}",
                         "    credentials:", f"      client_id: {app.client_id}",
                         f"      client_secret: ${{file:{secret_file}}}",
                         f"      refresh_token: ${{file:{token_file}}}",
                         f"      ru_name: {app.ru_name}"]
        for marketplace_id in account.marketplaces:
            code = marketplace_id.removeprefix("EBAY_")
            alias = f"ebay-{code.lower()}"
            aliases.append(alias)
            integrations = integrations + [f"  - alias: {alias}", f"    account: {name}",
                                           f"    marketplace: {code}",
                                           "    review_first_push: false"]
    return lines, integrations


# --- watching the store -------------------------------------------------------------------

#: New orders printed one by one per poll; the rest are counted on one line.
ORDER_LINES = 4


def _snapshot(session, after_order_id: int) -> dict:
    items = (select(OrderItem.order_id, func.count().label("n")).group_by(OrderItem.order_id)
             .subquery())
    orders = session.execute(
        select(Order.id, Order.integration_id, Order.channel_order_id, Order.fulfillment,
               Order.total, Order.currency, Order.purchased_at, items.c.n)
        .outerjoin(items, items.c.order_id == Order.id)
        .where(Order.id > after_order_id).order_by(Order.id).limit(500)).all()
    listings = session.execute(
        select(Listing.id, Listing.integration_id, Listing.channel_sku, Listing.fulfillment,
               Listing.acknowledged_quantity, Listing.price, Listing.currency,
               Listing.push_generation > Listing.pushed_generation)).all()
    tracking = session.execute(
        select(FulfillmentOrder.id, FulfillmentOrder.integration_id,
               FulfillmentOrder.seller_fulfillment_order_id, FulfillmentOrder.carrier,
               FulfillmentOrder.tracking_numbers, FulfillmentOrder.status)).all()
    return {"orders": orders, "listings": listings, "tracking": tracking}


def _order_counts(session) -> list:
    return session.execute(select(Order.marketplace, Order.fulfillment, func.count())
                           .group_by(Order.marketplace, Order.fulfillment)).all()


class Watcher:
    """Prints what changed in the store since the last look, and keeps the tallies."""

    def __init__(self, daemon, echo=click.echo, interval: float = 5.0):
        self.daemon, self.echo, self.interval = daemon, echo, interval
        self.started_at = clock.now()
        self.last_order_id = 0
        self.listings: dict[int, tuple] = {}
        self.pending_since: dict[int, float] = {}
        self.latencies: list[float] = []
        self.tracked: dict[int, tuple] = {}
        self.pushes = self.prices = self.tracking = 0
        self.order_counts: list = []
        self.caught_up: set[str] = set()  #: integrations whose backlog line was printed
        self.states: dict[str, tuple[str, str | None]] = {}
        self._first = True

    def stamp(self) -> str:
        return clock.now().strftime("%H:%M")

    def say(self, line: str) -> None:
        self.echo(f"[{self.stamp()}] {line}")

    def alias(self, integration_id: int) -> str:
        for alias, known in self.daemon.integration_ids.items():
            if known == integration_id:
                return alias
        return "manual"

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> None:
        snapshot = await self.daemon.store.read(_snapshot, self.last_order_id)
        self._orders(snapshot["orders"])
        self._listings(snapshot["listings"])
        self._tracking(snapshot["tracking"])
        self._first = False

    def _orders(self, rows) -> None:
        if not rows:
            return
        self.last_order_id = rows[-1].id
        earlier = Counter(self.alias(r.integration_id) for r in rows
                          if r.purchased_at < self.started_at)
        for alias, count in sorted(earlier.items()):
            # once per integration: a backfill spread over several polls is one story
            if alias not in self.caught_up:
                self.caught_up.add(alias)
                self.say(f"{alias:<10} caught up: {count} order(s) placed before the demo "
                         "started")
        fresh = [r for r in rows if r.purchased_at >= self.started_at
                 and self.alias(r.integration_id) != "manual"]
        for row in fresh[:ORDER_LINES]:
            total = f"{row.total} {row.currency}" if row.total is not None else "(no total yet)"
            self.say(f"{self.alias(row.integration_id):<10} order {row.channel_order_id}  "
                     f"{row.fulfillment.value}  {row.n or 0} item(s)  {total}")
        if len(fresh) > ORDER_LINES:
            self.say(f"{'':<10} ... and {len(fresh) - ORDER_LINES} more order(s)")

    def _listings(self, rows) -> None:
        now = clock.monotonic()
        for row in rows:
            before = self.listings.get(row.id)
            self.listings[row.id] = (row.acknowledged_quantity, row.price)
            pending = bool(row[-1])
            if pending:
                self.pending_since.setdefault(row.id, now)
                continue
            if before is None or self._first:
                continue
            alias = self.alias(row.integration_id)
            if row.fulfillment is Fulfillment.MFN and before[0] != row.acknowledged_quantity \
                    and row.id in self.pending_since:
                latency = now - self.pending_since.pop(row.id)
                self.latencies.append(latency)
                self.pushes += 1
                self.say(f"{alias:<10} stock {row.channel_sku} -> {row.acknowledged_quantity} "
                         f"accepted {latency:.0f} s after the change")
            self.pending_since.pop(row.id, None)
            if before[1] is not None and row.price is not None and before[1] != row.price:
                self.prices += 1
                self.say(f"{alias:<10} price {row.channel_sku} {before[1]} -> {row.price} "
                         f"{row.currency or ''}".rstrip())

    def _tracking(self, rows) -> None:
        for row in rows:
            seen = (row.status, tuple(row.tracking_numbers or ()))
            if self.tracked.get(row.id) == seen:
                continue
            self.tracked[row.id] = seen
            if row.tracking_numbers:
                self.tracking += 1
                self.say(f"{self.alias(row.integration_id):<10} MCF {row.seller_fulfillment_order_id}"
                         f" {row.status}: {row.carrier or 'carrier?'} "
                         f"{', '.join(map(str, row.tracking_numbers))}")
            elif row.status:
                self.say(f"{self.alias(row.integration_id):<10} MCF "
                         f"{row.seller_fulfillment_order_id} {row.status}")

    async def finish(self) -> None:
        await self.poll()
        self.order_counts = await self.daemon.store.read(_order_counts)
        self.states = {alias: (runner.state.value, runner.reason)
                       for alias, runner in self.daemon.runners.items()}

    def summary(self, elapsed: float) -> dict:
        orders: dict[str, Counter] = {}
        for market, fulfillment, count in self.order_counts:
            counts = orders.setdefault(market, Counter())
            counts[fulfillment.value] += count
            counts["total"] += count
        latencies = sorted(self.latencies)
        stats = self.daemon.stats
        return {
            "simulated": elapsed, "orders": orders,
            "orders_total": sum(c["total"] for c in orders.values()),
            "pushes": self.pushes, "prices": self.prices, "tracking": self.tracking,
            "push_p95": latencies[math.ceil(0.95 * len(latencies)) - 1] if latencies else None,
            "resolution": self.interval,
            "calls": sum(stats.calls.values()), "throttled": sum(stats.throttled.values()),
            "not_live": {alias: state for alias, state in sorted(self.states.items())
                         if state[0] != "LIVE"},
        }


async def place_mcf_order(daemon, world) -> str | None:
    """Enter an order by hand and ask for it to be shipped from FBA stock (MCF); the
    daemon's fetch_tracking job sends it to Amazon and follows it to a tracking number."""
    from marketsync.core.domain import orders
    from marketsync.core.types import Address

    fba = next((item.sku for item in world.scenario.catalog if getattr(item, "fba_quantity", 0)),
               None)
    if fba is None or not daemon.runners:
        return None
    # the demo buyer lives in London: ship from the UK marketplace's FBA stock
    alias = next((a for a, i in daemon.integrations.items() if i.marketplace == "UK"),
                 next(iter(daemon.runners)))
    address = Address(name="Demo Buyer", line1="1 Example Street", city="London",
                      postal_code="SW1A 1AA", country_code="GB")

    def enter(session) -> str:
        order_id = orders.add_manual_order(session, "DEMO-MCF-1", [(fba, 1)], address=address,
                                           cipher=daemon.cipher)
        return orders.fulfill_mcf(session, order_id, daemon.integration_ids[alias])

    reference = await daemon.store.run(enter)
    daemon.trigger(alias, "fetch_tracking")
    return f"{alias:<10} MCF order {reference}: 1 x {fba} to be shipped by Amazon from FBA stock"


async def run_demo(scenario: str, duration: float, speed: float, directory: Path,
                   echo=click.echo) -> dict:
    """The demo inside trio (whose clock runs ``speed`` times faster); returns the summary."""
    from marketsync.core.runtime.daemon import Daemon
    from marketsync.core.config.schema import load_config
    from marketsync.core.runtime.plugins import build as build_plugins
    from marketsync.core.web.server import serve_web
    from marketsync.plugins.amazon.sandbox.serve import serve as serve_simulator

    plugins = build_plugins()
    started = clock.monotonic()
    async with trio.open_nursery() as nursery:
        world = await nursery.start(lambda task_status: serve_simulator(
            scenario, "127.0.0.1", 0, 1.0, out=lambda text: None, task_status=task_status))
        ebay_world = None
        if "ebay" in plugins.channels:  # a second channel when its plugin is installed
            from marketsync.plugins.ebay.sandbox.serve import serve as serve_ebay

            ebay_world = await nursery.start(lambda task_status: serve_ebay(
                "demo", "127.0.0.1", 0, 1.0, out=lambda text: None, task_status=task_status))
        setup = write_config(directory, world, "127.0.0.1:8470", ebay_world)
        config = load_config(setup.config_path, plugins.infos(), unavailable=plugins.unavailable())
        daemon = Daemon(config, plugins=plugins, store=Store(config.database))
        await daemon.prepare()
        web_url = await nursery.start(lambda task_status: serve_web(
            daemon, listen="127.0.0.1:0", task_status=task_status))
        markets = ", ".join(a.removeprefix("amazon-").upper() for a in setup.aliases
                            if a.startswith("amazon-"))
        also = ""
        if ebay_world is not None:
            sites = ", ".join(a.removeprefix("ebay-").upper() for a in setup.aliases
                              if a.startswith("ebay-"))
            also = f" and a simulated eBay ({sites}) at {ebay_world.base_url}"
        echo(f"marketsync demo: a simulated Amazon ({markets}) at {world.base_url}{also}, "
             f"{speed:g}x faster than real time, for {_span(duration)} of simulated time")
        echo(f"  configuration  {setup.config_path}")
        echo(f"  status page    {web_url}/   (also {web_url}/metrics and /healthz)")
        echo("  Ctrl-C stops it.\n")
        watcher = Watcher(daemon, echo, interval=max(5.0, 0.05 * speed))
        await nursery.start(daemon.serve)
        started = clock.monotonic()
        for alias, runner in daemon.runners.items():
            echo(f"[{watcher.stamp()}] {alias:<10} {runner.state.value}"
                 + (f" ({runner.reason})" if runner.reason else ""))
        nursery.start_soon(watcher.run)
        nursery.start_soon(_place_mcf_order, daemon, world, watcher)
        with trio.move_on_after(duration):
            await _until_interrupted()
        elapsed = clock.monotonic() - started
        await watcher.finish()
        await daemon.stop(grace=2.0)
        nursery.cancel_scope.cancel()
    return watcher.summary(elapsed=elapsed)


async def _until_interrupted() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _place_mcf_order(daemon, world, watcher: Watcher) -> None:
    """One order from another shop, shipped from FBA stock by Amazon (MCF): the daemon's
    fetch_tracking job then follows it to a carrier and tracking number."""
    await trio.sleep(MCF_AFTER)
    try:
        line = await place_mcf_order(daemon, world)
    except Exception as error:  # noqa: BLE001 - the demo goes on without it
        log.warning("demo: MCF order not placed: %s", error)
        return
    if line:
        watcher.say(line)


def _span(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def print_summary(summary: dict, echo=click.echo) -> None:
    echo(f"\nSummary after {_span(summary['simulated'])} of simulated time:")
    for market, counts in sorted(summary["orders"].items()):
        echo(f"  orders {market:<4} {counts['total']:>4}  (FBA {counts['FBA']}, "
             f"merchant-fulfilled {counts['MFN']})")
    echo(f"  orders imported {summary['orders_total']}")
    p95 = summary["push_p95"]
    echo(f"  stock pushes accepted {summary['pushes']}"
         + (f", p95 latency {p95:.0f} s (measured every {summary['resolution']:.0f} s)"
            if p95 is not None else ""))
    echo(f"  price changes {summary['prices']}, MCF tracking {summary['tracking']}")
    echo(f"  API calls {summary['calls']}, throttled (429) {summary['throttled']}")
    for alias, (state, reason) in summary.get("not_live", {}).items():
        echo(f"  {alias} ended {state}" + (f": {reason}" if reason else "")
             + (" — its orders and stock were not synced; see the status page"
                if state in ("INCOMPLETE", "ERROR") else ""))
    echo("\nNext steps:")
    echo("  1. Write /etc/marketsync/marketsync.yaml from the annotated config/example.yaml"
         " (`marketsync check-config --explain` lists every key).")
    echo("  2. Connect a real Amazon account:  marketsync connect ALIAS")
    echo("  3. Run it under systemd with config/marketsync.service.")
    echo("  Everything else: docs/operations.md")


@click.command("demo")
@click.option("--speed", type=click.FloatRange(min=1, max=10_000), default=60.0,
              show_default=True, help="Simulated seconds per real second.")
@click.option("--duration", default="2h", show_default=True,
              help="Simulated time to run (e.g. 30m, 2h, 1d); Ctrl-C stops sooner.")
@click.option("--scenario", default="demo", show_default=True,
              help="Simulator scenario: a name in the sandbox's scenarios or a YAML path.")
@click.option("--keep", is_flag=True, help="Keep the temporary directory (database, config).")
@click.pass_context
def demo(ctx: click.Context, speed: float, duration: str, scenario: str, keep: bool) -> None:
    """Run the daemon against a simulated Amazon, faster than real time, on a throw-away
    database, and show what it does."""
    seconds = parse_duration(duration)
    level = getattr(ctx.obj, "log_level", None) or "WARNING"
    logs.setup(getattr(ctx.obj, "log_format", None) or "human", level)
    directory = Path(tempfile.mkdtemp(prefix="marketsync-demo-"))
    try:
        summary = trio.run(run_demo, scenario, seconds, speed, directory,
                           clock=DemoClock(speed))
        print_summary(summary)
    except KeyboardInterrupt:  # Ctrl-C before the demo was listening for it
        click.echo("\ninterrupted while starting", err=True)
        raise SystemExit(130) from None
    finally:
        if keep:
            click.echo(f"\nkept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
