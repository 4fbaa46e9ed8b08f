"""Scale (issue #16, P6): one node with many integrations on PostgreSQL, then 3 replicas.

The world is built from the options (defaults: a sized-down P6, see docs/benchmarks.md):
``--accounts`` regional EU accounts × 5 marketplaces (UK, DE, FR, IT, ES), each with its
own ``--skus`` SKUs (80 % merchant-fulfilled, 20 % FBA), plus one NA account selling
``--big-skus`` SKUs in the US; ``--orders`` orders per simulated day (10 % in the US,
the rest spread over the EU sellers). Every process is separate and measured apart:

* the SP-API simulator: ``marketsync sandbox serve --speed S`` on a generated scenario;
* the daemon: ``marketsync run`` (bench/scale_daemon.py: the real command, its trio clock
  ``S`` times faster), on a fresh schema of the local PostgreSQL;
* this script: every simulated 15 minutes it ships a few merchant orders in the database
  (as ``marketsync orders ship`` would), which the daemon must confirm exactly once.

The shop is busy for ``--hours`` simulated hours, then quiet (the scenario's
``generator.quiet_from``: no orders, edits or FBA drift) for ``--quiet-minutes``; idle
CPU is measured over the last half of the quiet period, when the orders placed before it
have stopped changing (pending ≤ 10 min, FBA shipped ≤ 30 min after payment, no buyer
cancellations).

Figures, read from /proc (CPU = utime + stime of the process and its threads):
peak RSS (VmHWM), CPU seconds per simulated hour busy and idle, database size
(Σ pg_total_relation_size of the schema's tables), HTTP 429s (the simulator's call log),
orders stored against those visible at Amazon, confirmations per shipped order, feeds
the simulator received against the submissions the database knows.

``--replicas 3`` runs three daemons on the same database and SIGKILLs one every
simulated hour (round robin), restarting it at once.

    .venv/bin/python bench/scale.py --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import sqlalchemy
from sqlalchemy import func, select

from marketsync.core.domain import orders as book
from marketsync.core.store import Store
from marketsync.core.store.models import Order, ShipmentRow, SubmissionRow
from marketsync.core.types import Fulfillment, OrderStatus

HERE = Path(__file__).resolve().parent
START = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)
EU = ["UK", "DE", "FR", "IT", "ES"]
CLIENT_ID = "amzn1.application-oa2-client.scale"
CLIENT_SECRET = "amzn1.oa2-cs.v1.scale-secret"
APP_ID = "amzn1.sellerapps.app.scale"
BIG = "A9SCALEBIGNA"
SHIP_EVERY = 900.0  #: simulated seconds between two rounds of local shipments …
SHIP_PER_ROUND = 20  #: … of this many merchant orders
TICKS = os.sysconf("SC_CLK_TCK")
FEED_KINDS = ("stock", "prices")  #: submissions that are listings feeds


def seller(n: int) -> str:
    return f"A{n:03d}SCALEEU"


# --- the world --------------------------------------------------------------------------


def scenario(args: argparse.Namespace) -> dict:
    accounts = [{"seller_id": seller(n), "region": "EU", "marketplaces": EU,
                 "refresh_tokens": [f"Atzr|scale-{n}"], "name": f"Shop {n}"}
                for n in range(args.accounts)]
    accounts.append({"seller_id": BIG, "region": "NA", "marketplaces": ["US"],
                     "refresh_tokens": ["Atzr|scale-big"], "name": "Big shop"})
    catalog = []
    for n in range(args.accounts):
        for k in range(args.skus):
            item = {"sku": f"S{n:03d}-{k:05d}", "asin": f"B{n:03d}{k:06d}",
                    "title": f"Item {k} of shop {n}", "sellers": [seller(n)],
                    "prices": {code: f"{10 + k % 90}.99" for code in EU}}
            if k % 5 == 4:
                item["fba_quantity"] = 100_000
            else:
                item.update(mfn_quantity=100_000, handling_time=1 + k % 3)
            catalog.append(item)
    for k in range(args.big_skus):
        item = {"sku": f"BIG-{k:06d}", "asin": f"BG{k:08d}", "title": f"Big item {k}",
                "sellers": [BIG], "prices": {"US": f"{5 + k % 95}.49"}}
        if k % 5 == 4:
            item["fba_quantity"] = 100_000
        else:
            item.update(mfn_quantity=100_000, handling_time=2)
        catalog.append(item)
    per_day = {"US": args.orders * 0.1, **{code: args.orders * 0.9 / len(EU) for code in EU}}
    quiet_from = START + timedelta(hours=args.hours)
    return {
        "seed": 1616, "start": START.isoformat(), "history_days": 0,
        "data_lag_seconds": [60, 120],
        "applications": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                          "application_id": APP_ID,
                          "redirect_uris": ["http://127.0.0.1:8470/channels/amazon/callback"]}],
        "accounts": accounts, "catalog": catalog,
        "generator": {"orders_per_day": per_day, "fba_share": 0.2,
                      "items_per_order": [1, 2], "quantity_per_item": [1, 2],
                      "cancel_by_buyer": 0.0, "cancel_by_amazon": 0.01,
                      "pending_minutes": [2, 10], "fba_ship_hours": [0.1, 0.5],
                      "channel_edits_per_day": 2, "quiet_from": quiet_from.isoformat()},
    }


def config(args, sim_url: str, database: str, port: int, secrets: Path) -> str:
    lines = [f"database: {database}", "http:", f"  listen: 127.0.0.1:{port}",
             "log:", f"  level: {args.log_level}"]
    if args.lease_ttl:
        lines += ["replicas:", f"  lease_ttl: {args.lease_ttl}"]
    lines.append("accounts:")
    shops = [(f"eu{n:03d}", seller(n), f"Atzr|scale-{n}", EU) for n in range(args.accounts)]
    shops.append(("big", BIG, "Atzr|scale-big", ["US"]))
    secrets.mkdir(mode=0o700, exist_ok=True)
    for name, seller_id, token, _ in shops:
        (secrets / name).write_text(token + "\n")
        lines += [f"  {name}:", "    channel: amazon", f"    endpoint: {sim_url}",
                  "    credentials:", f"      client_id: {CLIENT_ID}",
                  "      client_secret: ${SCALE_SECRET}",
                  f"      refresh_token: ${{file:{secrets / name}}}",
                  f"      app_id: {APP_ID}", f"      seller_id: {seller_id}"]
    lines.append("integrations:")
    for name, _, _, codes in shops:
        for code in codes:
            lines += [f"  - alias: {name}-{code.lower()}", f"    account: {name}",
                      f"    marketplace: {code}", "    review_first_push: false",
                      "    history_days: 1"]
    return "\n".join(lines) + "\n"


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Measured:
    """A process's CPU and memory, read from /proc (the figures survive its death)."""

    name: str
    process: subprocess.Popen
    cpu_before_restarts: float = 0.0
    peak_rss_mib: float = 0.0
    restarts: int = 0
    logs: list[Path] = field(default_factory=list)

    def cpu(self) -> float:
        """CPU seconds of this process so far, earlier incarnations included."""
        return self.cpu_before_restarts + self._cpu_now()

    def _cpu_now(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            self.peak_rss_mib = max(self.peak_rss_mib, int(match.group(1)) / 1024)

    def kill(self) -> None:
        """SIGKILL, with the figures read first (/proc forgets a reaped process)."""
        self.sample()
        self.cpu_before_restarts += self._cpu_now()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def replace(self, process: subprocess.Popen, log: Path) -> None:
        self.process, self.restarts = process, self.restarts + 1
        self.logs.append(log)


def start_simulator(path: Path, speed: float, log: Path) -> tuple[subprocess.Popen, str]:
    stream = open(log, "w")
    process = subprocess.Popen(
        [sys.executable, "-u", "-c", "from marketsync.daemon import cli; cli()", "sandbox",
         "serve", "--scenario", str(path), "--port", "0", "--speed", str(speed)],
        stdout=stream, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        match = re.search(r"simulator at (http://127\.0\.0\.1:\d+)", log.read_text())
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            raise SystemExit(f"the simulator exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise SystemExit("the simulator did not start within 10 minutes")


def start_daemon(config_path: Path, speed: float, sim_url: str, log: Path,
                 profile: str | None = None) -> subprocess.Popen:
    now = httpx.get(f"{sim_url}/_sandbox/credentials", timeout=60).json()["now"]
    extra = ["--profile", profile] if profile else []
    with open(log, "a") as stream:
        return subprocess.Popen(
            [sys.executable, str(HERE / "scale_daemon.py"), "--speed", str(speed), "--start",
             now, *extra, "--", "-c", str(config_path), "run"],
            stdout=stream, stderr=subprocess.STDOUT,
            env={**os.environ, "SCALE_SECRET": CLIENT_SECRET})


# --- the database ---------------------------------------------------------------------------


def fresh_schema(url: str) -> tuple[str, str, sqlalchemy.Engine]:
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    return schema, f"{url}{separator}options=-csearch_path%3D{schema}", admin


def database_size(admin: sqlalchemy.Engine, schema: str) -> int:
    with admin.connect() as connection:
        return connection.execute(sqlalchemy.text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'm')"),
            {"schema": schema}).scalar_one()


def ship_some(store: Store, count: int, round_: int, now: datetime) -> list[str]:
    """Ship up to ``count`` open merchant orders, as an operator would; their channel ids."""
    def work(session):
        shipped = select(ShipmentRow.order_id)
        rows = session.execute(
            select(Order.id, Order.channel_order_id)
            .where(Order.fulfillment == Fulfillment.MFN, Order.status == OrderStatus.NEW,
                   func.upper(Order.channel_status) != "PENDING",  # paid: shippable
                   Order.id.not_in(shipped))
            .order_by(Order.id).limit(count)).all()
        done = []
        for order_id, channel_id in rows:
            try:
                book.ship_order(session, order_id, carrier="DHL", shipped_at=now,
                                tracking_number=f"SCALE{round_:04d}{order_id:08d}")
            except book.OrderStateError:
                continue  # not shippable (e.g. still pending payment)
            done.append(channel_id)
        return done
    try:
        return store.run_blocking(work)
    except Exception as error:  # noqa: BLE001 - a failed round is reported, not fatal
        print(f"  (shipping round {round_} failed: {type(error).__name__}: {error})")
        return []


def counts(store: Store) -> dict[str, int]:
    def work(session):
        return {
            "orders": session.execute(select(func.count()).select_from(Order)).scalar_one(),
            "shipments": session.execute(select(func.count()).select_from(ShipmentRow)).scalar_one(),
        }
    return store.read_blocking(work)


def submitted_ids(store: Store) -> list[str]:
    """The channel ids of every push the database recorded (feed ids among them)."""
    return store.read_blocking(lambda session: list(session.execute(
        select(SubmissionRow.channel_id)).scalars()))


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="PostgreSQL URL (a fresh schema "
                        "is made, and dropped unless --keep)")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--big-skus", type=int, default=5000)
    parser.add_argument("--orders", type=float, default=5000, help="orders per simulated day")
    parser.add_argument("--hours", type=float, default=2.0, help="busy simulated hours")
    parser.add_argument("--quiet-minutes", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=12.0)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--lease-ttl", default=None, help="replicas.lease_ttl (e.g. 60s)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and files")
    parser.add_argument("--log-level", default="WARNING",
                        help="the daemons' log.level (INFO shows the transport's retries)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the (first) daemon into FILE")
    args = parser.parse_args()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}; {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at start")
    integrations = args.accounts * len(EU) + 1
    listings = args.accounts * args.skus * len(EU) + args.big_skus
    print(f"world: {args.accounts} EU accounts × {len(EU)} marketplaces × {args.skus} SKUs + 1 US "
          f"account × {args.big_skus} SKUs = {integrations} integrations, {listings} listings; "
          f"{args.orders:g} orders/day; {args.hours:g} h busy + {args.quiet_minutes:g} min "
          f"quiet at {args.speed:g}× real time; {args.replicas} daemon(s)")
    workdir = Path(tempfile.mkdtemp(prefix="marketsync-scale-"))
    schema, url, admin = fresh_schema(args.database)
    processes: list[subprocess.Popen] = []
    try:
        run(args, workdir, url, admin, schema, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept: schema {schema}, files in {workdir}")
        admin.dispose()


def run(args, workdir: Path, url: str, admin, schema: str, processes: list) -> None:
    wall = time.monotonic()
    scenario_path = workdir / "scenario.yaml"
    scenario_path.write_text(json.dumps(scenario(args)))  # JSON is YAML
    sim, sim_url = start_simulator(scenario_path, args.speed, workdir / "simulator.log")
    processes.append(sim)
    simulator = Measured("simulator", sim)
    print(f"simulator ready after {time.monotonic() - wall:.0f} real s "
          f"({simulator.cpu():.1f} CPU s to build the world)")
    store = Store(url)
    store.upgrade()  # the daemons would migrate too; once here so they do not race
    daemons: list[Measured] = []
    for index in range(args.replicas):
        path = workdir / f"daemon{index}.yaml"
        path.write_text(config(args, sim_url, url, free_port(), workdir / "secrets"))
        log = workdir / f"daemon{index}.log"
        process = start_daemon(path, args.speed, sim_url, log, args.profile if index == 0 else None)
        processes.append(process)
        daemons.append(Measured(f"daemon {index}", process, logs=[log]))

    def sim_now() -> datetime:
        text = httpx.get(f"{sim_url}/_sandbox/credentials", timeout=120).json()["now"]
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def daemon_cpu() -> float:
        return sum(d.cpu() for d in daemons)

    began = sim_now()
    busy_end = START + timedelta(hours=args.hours)
    quiet_end = busy_end + timedelta(minutes=args.quiet_minutes)
    idle_from = busy_end + timedelta(minutes=args.quiet_minutes / 2)
    print(f"daemon(s) started at simulated {began:%H:%M:%S} (world start {START:%H:%M})")
    marks: dict[str, tuple[datetime, float, float]] = {}
    shipped: list[str] = []
    next_ship = START + timedelta(seconds=SHIP_EVERY)
    next_hour = START + timedelta(hours=1)
    killed = 0
    while True:
        time.sleep(2.0)
        for measured in (simulator, *daemons):
            measured.sample()
            if measured is not simulator and measured.process.poll() is not None \
                    and measured.process.returncode != -signal.SIGKILL:
                raise SystemExit(f"{measured.name} exited ({measured.process.returncode}):\n"
                                 f"{measured.logs[-1].read_text()[-3000:]}")
        now = sim_now()
        if now >= next_hour and now < busy_end + timedelta(minutes=1):
            stamp = (now, daemon_cpu(), simulator.cpu())
            hour = len([k for k in marks if k.startswith('h')]) + 1
            marks[f"h{hour}"] = stamp
            before = marks.get(f"h{hour - 1}", (began, 0.0, 0.0))
            print(f"  simulated {now:%H:%M}: daemon CPU {stamp[1]:.0f} s (+{stamp[1] - before[1]:.0f}), "
                  f"simulator {stamp[2]:.0f} s (+{stamp[2] - before[2]:.0f}), daemon peak RSS "
                  f"{max(d.peak_rss_mib for d in daemons):.0f} MiB, "
                  f"{counts(store)['orders']} orders stored; "
                  f"{time.monotonic() - wall:.0f} real s", flush=True)
            if args.replicas > 1:  # every hour of the busy period, its last one included
                victim = daemons[killed % len(daemons)]
                victim.kill()
                log = victim.logs[0].with_suffix(f".{victim.restarts + 1}.log")
                victim.replace(start_daemon(victim.logs[0].with_suffix(".yaml"), args.speed,
                                            sim_url, log), log)
                processes.append(victim.process)
                killed += 1
                print(f"    SIGKILLed {victim.name} and started it again", flush=True)
            next_hour += timedelta(hours=1)
        if now >= next_ship and now < busy_end:
            shipped += ship_some(store, SHIP_PER_ROUND, len(shipped), now)
            next_ship += timedelta(seconds=SHIP_EVERY)
        if "busy_end" not in marks and now >= busy_end:
            marks["busy_start"] = marks.get("busy_start", (began, 0.0, 0.0))
            marks["busy_end"] = (now, daemon_cpu(), simulator.cpu())
        if "idle_from" not in marks and now >= idle_from:
            marks["idle_from"] = (now, daemon_cpu(), simulator.cpu())
        if now >= quiet_end:
            marks["idle_to"] = (now, daemon_cpu(), simulator.cpu())
            break
    real = time.monotonic() - wall
    report(args, marks, daemons, simulator, store, admin, schema, sim_url, shipped, began,
           real, killed)
    store.close()


def report(args, marks, daemons, simulator, store, admin, schema, sim_url, shipped, began,
           real, killed) -> None:
    def per_hour(a: str, b: str, index: int) -> tuple[float, float]:
        (t0, *v0), (t1, *v1) = marks[a], marks[b]
        hours = (t1 - t0).total_seconds() / 3600
        return (v1[index - 1] - v0[index - 1]) / hours if hours else float("nan"), hours

    busy_daemon, busy_hours = per_hour("busy_start", "busy_end", 1)
    busy_sim, _ = per_hour("busy_start", "busy_end", 2)
    idle_daemon, idle_hours = per_hour("idle_from", "idle_to", 1)
    idle_sim, _ = per_hour("idle_from", "idle_to", 2)
    calls = httpx.get(f"{sim_url}/_sandbox/calls", timeout=300).json()["calls"]
    statuses = Counter(c["status"] for c in calls)
    operations = Counter(c["operation"] for c in calls)
    orders = httpx.get(f"{sim_url}/_sandbox/orders", timeout=300).json()["orders"]
    end = marks["idle_to"][0]
    visible = {o["orderId"] for o in orders
               if datetime.fromisoformat(o["visibleFrom"].replace("Z", "+00:00"))
               <= end - timedelta(minutes=10)}
    stored = set(store.read_blocking(
        lambda s: list(s.execute(select(Order.channel_order_id)).scalars())))
    confirmations = httpx.get(f"{sim_url}/_sandbox/confirmations", timeout=300).json()
    accepted = Counter(c["orderId"] for c in confirmations["confirmations"] if c.get("accepted"))
    feeds = httpx.get(f"{sim_url}/_sandbox/submissions", timeout=300).json()["feeds"]
    size = database_size(admin, schema)
    print()
    print(f"wall time {real:.0f} s at {args.speed:g}× ({(marks['idle_to'][0] - began).total_seconds() / 3600:.2f} "
          f"simulated h after the daemons started); load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    print(f"daemon CPU: {busy_daemon:.0f} s per simulated hour busy ({busy_hours:.2f} h measured), "
          f"{idle_daemon:.1f} s per simulated hour quiet ({idle_hours:.2f} h measured, "
          f"= {idle_daemon / 36:.2f} % of a core at real speed)")
    print(f"simulator CPU (apart): {busy_sim:.0f} s per simulated hour busy, {idle_sim:.1f} quiet; "
          f"peak RSS {simulator.peak_rss_mib:.0f} MiB")
    for measured in daemons:
        print(f"{measured.name}: peak RSS {measured.peak_rss_mib:.0f} MiB (VmHWM, highest "
              f"incarnation), {measured.cpu():.0f} CPU s in all, restarted {measured.restarts}×")
    print(f"database size: {size / 2**20:.1f} MiB (Σ pg_total_relation_size, {schema})")
    print(f"SP-API calls: {len(calls)}; HTTP 429: {statuses.get(429, 0)}; other non-2xx: "
          f"{sum(n for s, n in statuses.items() if s >= 300 and s != 429)} "
          f"{dict((s, n) for s, n in statuses.items() if s >= 300)}")
    print("  by operation: " + ", ".join(f"{op} {n}" for op, n in operations.most_common()))
    throttled = Counter(c["operation"] for c in calls if c["status"] == 429)
    if throttled:
        print(f"  429 by operation: {dict(throttled)}")
    lost = visible - stored
    print(f"orders: {len(orders)} generated, {len(visible)} visible ≥ 10 min before the end, "
          f"{len(stored)} stored, {len(lost)} visible but not stored")
    twice = [o for o, n in accepted.items() if n > 1]
    for order_id in twice[:5]:  # when: a retry after a timeout, or two owners?
        times = [c["at"][11:19] for c in confirmations["confirmations"]
                 if c["orderId"] == order_id and c.get("accepted")]
        print(f"  {order_id} confirmed at {', '.join(times)} (simulated)")
    unconfirmed = [o for o in shipped if accepted[o] == 0]
    print(f"shipments: {len(shipped)} shipped locally, {sum(1 for o in shipped if accepted[o] == 1)} "
          f"confirmed exactly once, {len(twice)} confirmed more than once, "
          f"{len(unconfirmed)} not confirmed")
    recorded = Counter(submitted_ids(store))
    feed_ids = [f["feedId"] for f in feeds]
    unknown_feeds = [f for f in feed_ids if recorded[f] == 0]
    doubled = [f for f in feed_ids if recorded[f] > 1]
    print(f"feeds: {len(feed_ids)} received by the simulator, {len(feed_ids) - len(unknown_feeds)} "
          f"of them recorded in the database, {len(unknown_feeds)} unrecorded (sent by a "
          f"replica that died before recording it), {len(doubled)} recorded twice")
    if args.replicas > 1:
        print(f"replicas: {killed} SIGKILLs, one per simulated hour")
    problems = []
    if statuses.get(429, 0):
        problems.append(f"{statuses[429]} × 429")
    if lost:
        problems.append(f"{len(lost)} orders lost, e.g. {sorted(lost)[:3]}")
    if twice:
        problems.append(f"{len(twice)} shipments confirmed twice")
    if doubled:
        problems.append(f"{len(doubled)} feeds recorded twice")
    if unknown_feeds:
        problems.append(f"{len(unknown_feeds)} feeds sent but never recorded")
    if unconfirmed:
        problems.append(f"{len(unconfirmed)} shipments not confirmed")
    print("checks: " + ("all passed" if not problems else "; ".join(problems)))


if __name__ == "__main__":
    main()
