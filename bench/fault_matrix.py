"""The fault matrix, long version: a simulated week of rounds with a fault in each.

Each simulated hour places good orders and one malformed order (the simulator's kinds in
turn, merchant and FBA alternately), turns on one fault for 20 minutes (5xx storm, 429
storm, every access token expired at once, an outage, or none), changes a stock
figure and ships an open merchant order. At random moments (one per six rounds unless
``--restarts`` says otherwise) the daemon is crashed — cancelled without a stop — and a
new one starts on the same database and simulator, and what must hold at any moment is
checked. After the last round the daemon gets an hour to converge and every promise is
checked (``tests/e2e/fault_matrix.py``). Prints the row for docs/benchmarks.md; exits 1
when a promise failed.

    .venv/bin/python bench/fault_matrix.py [--rounds 168] [--restarts N] [--seed S]
                                           [--database URL]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import conftest as e2e  # noqa: E402  (the e2e tests' scenario and configuration)
from marketsync.core.config.schema import parse_config  # noqa: E402
from marketsync.core.runtime import plugins as plugin_loading  # noqa: E402
from marketsync.core.runtime.daemon import Daemon  # noqa: E402
from marketsync.core.store import Store  # noqa: E402
from marketsync.core.store import engine as store_engine  # noqa: E402
from marketsync.plugins.amazon.sandbox import World, create_app  # noqa: E402

# the driver shares this script's name: load it from its path
_spec = importlib.util.spec_from_file_location("e2e_fault_matrix",
                                               ROOT / "tests" / "e2e" / "fault_matrix.py")
fault_matrix = sys.modules["e2e_fault_matrix"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fault_matrix)


def buyer_texts(world) -> list[str]:
    return sorted({v for o in world.orders.values()
                   for v in (o.buyer.get("buyerName"), o.buyer.get("buyerEmail"),
                             o.address.get("addressLine1")) if v})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=168, help="simulated hours (168: a week)")
    parser.add_argument("--database", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--restarts", type=int,
                        help="crashes at random moments (default: one per 6 rounds)")
    parser.add_argument("--seed", type=int, default=12, help="where the crashes fall")
    args = parser.parse_args()
    restarts = args.rounds // 6 if args.restarts is None else args.restarts
    catalog = copy.deepcopy(e2e.SCENARIO["catalog"])
    for entry in catalog:
        for key in ("mfn_quantity", "fba_quantity"):
            if key in entry:
                entry[key] = 100_000
    integrations = [("amazon-us", "na", "US"), ("amazon-de", "eu", "DE"), ("amazon-uk", "eu", "UK")]
    # the "database locked" fault holds SQLite's write lock for two simulated minutes; a
    # 0.2 s busy timeout lets each blocked write fail in real milliseconds, not 30 s
    store_engine.SQLITE_BUSY_TIMEOUT_MS = 200
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, common.database(args.database, Path(tmp)) as url:
        async def run():
            world = World(e2e.scenario(catalog=catalog, history_days=0, generator=dict(
                e2e.SCENARIO["generator"], orders_per_day={})), base_url=e2e.SANDBOX)
            app = create_app(world)
            plugins = plugin_loading.build(load_entry_points=False)
            config = parse_config(e2e.config_text(integrations), plugins.infos(),
                                  filename=str(Path(tmp) / "marketsync.yaml"), environ=e2e.ENV)

            def new_daemon() -> Daemon:  # the same database and simulator, a fresh process state
                return Daemon(config, plugins=plugins, store=Store(url),
                              transport_factory=lambda account: httpx.ASGITransport(app=app))

            return await fault_matrix.run_matrix(
                new_daemon(), world, rounds=args.rounds,
                marketplaces={alias: code for alias, _, code in integrations},
                sellers={"US": e2e.NA, "DE": e2e.EU}, buyer_texts=buyer_texts,
                make_daemon=new_daemon, restarts=restarts, seed=args.seed)
        found = common.run(run)
    row = found.row()
    for key, value in row.items():
        print(f"{key}: {value}")
    print(f"wall time {time.perf_counter() - started:.0f} s, CPU {common.cpu_seconds():.0f} s, "
          f"peak RSS {common.peak_rss_mib():.0f} MiB")
    sys.exit(1 if found.problems else 0)


if __name__ == "__main__":
    main()
