"""New order → stored with SP-API notifications: simulator → real SQS server → daemon.

The shape of ``simulated_day.py`` (three regional accounts, 12 marketplaces, ~5,000 orders
a day, the default schedule), with each account's notifications on: the simulator
publishes ORDER_CHANGE (and the other types) to a moto SQS server that this script starts
on loopback, and the daemon long-polls it over real sockets and fetches each announced
order with ``getOrder``. The order poll keeps running on its usage-plan schedule as the
safety net.

Why not MockClock's autojump, as the other benchmarks: a long poll is real network I/O
to another process, and an autojumping clock leaps while the loop waits for a socket, so
every receive would time out in simulated time. Here trio's clock runs at ``--rate``
times real time (``MockClock(rate=…)``): simulated seconds are real seconds × rate,
everything the daemon does (database, HTTP, CPU) takes rate × its real duration in the
figures, so latencies are, if anything, overstated by the speed-up. The SQS long poll
waits ``WAIT`` real seconds; its HTTP deadline (``wait + 10`` s on trio's clock) is
``(WAIT + 10) / rate`` real seconds, so the rate must stay below 11 (default 5).

Latency per order = the time the daemon's storing transaction began (``orders.created_at``,
simulated) − the moment the simulator made the order visible (creation + its data lag,
60-120 s); the simulator publishes what is due every ``PUBLISH_EVERY`` simulated seconds.

    .venv/bin/python bench/notifications_latency.py [--minutes 60] [--rate 5] [--without]
                                                     [--database URL]
"""

from __future__ import annotations

import math
import shlex
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import httpx
import trio
import trio.testing
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from simulated_day import ORDERS, REGIONS  # noqa: E402
from marketsync.core import clock  # noqa: E402
from marketsync.core.cli import oneshot  # noqa: E402
from marketsync.core.store.models import Order  # noqa: E402
from marketsync.plugins.amazon.manifest import INFO  # noqa: E402
from marketsync.plugins.amazon.sandbox.notifications import deliver_forever  # noqa: E402

WAIT = 1  #: SQS long poll, real seconds (see the module docstring)
PUBLISH_EVERY = 1.0  #: simulated seconds between two publishing rounds of the simulator
SQS_ACCOUNT = "123456789012"


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto SQS server on a free loopback port, for this run only."""
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start within 60 s") from None
                time.sleep(0.2)
        yield url
    finally:
        process.kill()
        process.wait()


def create_queue(endpoint: str, name: str) -> str:
    import json

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    payload = json.dumps({"QueueName": name})
    request = AWSRequest(method="POST", url=endpoint + "/", data=payload, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.CreateQueue"})
    SigV4Auth(Credentials("bench", "bench"), "sqs", "us-east-1").add_auth(request)
    response = httpx.post(endpoint + "/", content=payload, headers=dict(request.headers.items()))
    response.raise_for_status()
    return response.json()["QueueUrl"]


def with_notifications(text: str, queues: dict[str, str]) -> str:
    """``common.config_text`` with a ``notifications`` section in every account."""
    for region, queue_url in queues.items():
        head = f"  {region.lower()}:\n    channel: amazon\n"
        text = text.replace(head, head + "    notifications:\n"
                            f"      queue_url: {queue_url}\n"
                            "      access_key_id: ${BENCH_SECRET}\n"
                            "      secret_access_key: ${BENCH_SECRET}\n"
                            f"      wait_seconds: {WAIT}\n", 1)
    return text


def _stored_at(session) -> dict[str, object]:
    return dict(session.execute(select(Order.channel_order_id, Order.created_at)).all())


def main() -> None:
    def extra(parser) -> None:
        parser.add_argument("--minutes", type=float, default=None,
                            help="simulated minutes (default 60; --quick 10)")
        parser.add_argument("--rate", type=float, default=5.0,
                            help="simulated seconds per real second (below 11)")
        parser.add_argument("--without", action="store_true",
                            help="the same run without notifications (polling only): the "
                                 "baseline on the same clock and machine")

    args = common.arguments(__doc__.splitlines()[0], extra)
    if not 0 < args.rate < 11:
        raise SystemExit("--rate must be above 0 and below 11 (see the module docstring)")
    minutes = args.minutes or (10.0 if args.quick else 60.0)
    print("# new order → stored " + ("WITHOUT notifications (polling only)" if args.without
                                      else "with notifications through a real SQS server"))
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"database: {'PostgreSQL (fresh schema)' if args.database else 'SQLite (temporary file)'}"
          f"; trio clock at {args.rate:g}× real time (no autojump); SQS long poll {WAIT} real s;"
          f" simulator publishes every {PUBLISH_EVERY:g} simulated s; GIL switch interval "
          f"{common.SWITCH_INTERVAL:g} s")
    log_counter = common.quiet_logging()
    timer = common.WallTimer()
    codes = [c for cs in REGIONS.values() for c in cs]
    items = (common.catalog(150, codes, quantity=5000)
             + common.catalog(50, codes, prefix="FBA", quantity=20000, fba=True))
    duration = minutes * 60.0
    figures: dict = {}

    with common.workdir() as workdir, common.database(args.database, workdir) as url, \
            (nullcontext("") if args.without else moto_server()) as sqs:
        queues = {region: create_queue(sqs, f"marketsync-bench-{region.lower()}")
                  for region in REGIONS} if sqs else {}

        async def run() -> None:
            clock.set_start(common.START)
            world = common.World(common.scenario(REGIONS, items, orders_per_day=ORDERS,
                                                 fba_share=0.25, channel_edits_per_day=2),
                                 base_url=common.SANDBOX)
            text = with_notifications(common.config_text(REGIONS, settings="    history_days: 1"),
                                      queues)
            if queues:
                setup = common.make_daemon(world, text, url, workdir)
                for region in REGIONS:
                    for line in await oneshot.notifications(setup, region.lower(), "subscribe"):
                        if "ORDER_CHANGE" in line and "subscribed" not in line:
                            raise RuntimeError(line)
                for integration in setup.integrations.values():
                    await integration.http.aclose()
            daemon = common.make_daemon(world, text, url, workdir)
            start = clock.now()
            async with httpx.AsyncClient() as publisher, common.serving(daemon):
                async with trio.open_nursery() as nursery:
                    if queues:
                        nursery.start_soon(deliver_forever, world, publisher, sqs, PUBLISH_EVERY)
                    remaining = duration
                    while remaining > 0:
                        step = min(600.0, remaining)
                        await trio.sleep(step)
                        remaining -= step
                        print(f"  {(duration - remaining) / 60:5.0f} min: {len(world.orders)} "
                              f"orders at Amazon; {timer.seconds:.0f} real s", flush=True)
                    nursery.cancel_scope.cancel()
                stored = await daemon.store.read(_stored_at)
            end = start + timedelta(seconds=duration)
            fresh = [o for o in world.orders.values() if start <= o.created
                     and o.created + o.lag <= end - timedelta(minutes=2)]
            figures.update(
                calls=common.calls_by_operation(world, since=start),
                throttled_at=[(round((c.at - start).total_seconds(), 1), c.operation)
                              for c in world.calls if c.status == 429],
                throttled=dict(daemon.stats.throttled),
                visible=len(fresh),
                delays=[(stored[o.order_id] - (o.created + o.lag)).total_seconds()
                        for o in fresh if o.order_id in stored],
                consumers={name: dict(c.counts) for name, c in
                           daemon.notification_consumers.items()},
                missed={name: c.missed for name, c in daemon.notification_consumers.items()},
                published=Counter(e.get("NotificationType") or e.get("notificationType")
                                  for e in world.notifications.sent),
                jobs_failed=Counter(k for (_, k, ok), n in daemon.stats.jobs.items()
                                    if not ok for _ in range(n)))

        sys.setswitchinterval(common.SWITCH_INTERVAL)
        trio.run(run, clock=trio.testing.MockClock(rate=args.rate))

    report(figures, duration)
    common.footer(timer, log_counter)


def report(figures: dict, duration: float) -> None:
    delays, calls = figures["delays"], figures["calls"]
    hours, accounts = duration / 3600, len(REGIONS)
    print()
    print(f"orders visible during the run: {figures['visible']}; stored: {len(delays)}")
    print(f"new order → stored (storing transaction began − order visible at Amazon), "
          f"simulated s: p50 {common.percentile(delays, 50):.1f}, "
          f"p95 {common.percentile(delays, 95):.1f}, max {max(delays, default=math.nan):.1f}")
    search = sum(n for (op, _), n in calls.items() if op == "searchOrders")
    get_order = sum(n for (op, _), n in calls.items() if op == "getOrder")
    print(f"searchOrders: {search} calls, {search / accounts / hours:.1f} per account-hour "
          f"(the plan allows {INFO.usage_plans['searchOrders'].rate * 3600:.1f}); "
          f"getOrder: {get_order} calls, {get_order / accounts / hours:.1f} per account-hour "
          f"(allowed {INFO.usage_plans['getOrder'].rate * 3600:.0f})")
    print(f"HTTP 429: simulator {sum(n for (_, s), n in calls.items() if s == 429)}, "
          f"daemon counted {sum(figures['throttled'].values())} {figures['throttled'] or ''}")
    if figures["throttled_at"]:
        print(f"  the simulator's 429s (simulated s after the start, operation): "
              f"{figures['throttled_at'][:12]}")
    made = Counter()
    for (operation, _), n in calls.items():
        made[operation] += n
    print("calls by operation: " + ", ".join(f"{op} {n}" for op, n in made.most_common()))
    print(f"published by the simulator: {dict(figures['published'])}")
    for name, counts in sorted(figures["consumers"].items()):
        shown = {k: v for k, v in counts.items() if v}
        print(f"consumer {name}: {shown}; orders polling found first (missed): "
              f"{figures['missed'][name]}")
    print(f"failed job runs: {dict(figures['jobs_failed']) or 'none'}")


if __name__ == "__main__":
    main()
