"""A large ``stock import``: total time, and how long the write lock is held at a time.

Issue 12 saw a 200,000-row ``stock import`` run as one 250-s transaction, during which
every bookkeeping write of the daemon failed with "database is locked". The import now
checks every row in a read transaction and applies ``csvio.APPLY_CHUNK`` rows per write
transaction, each chunk one ledger write. This script builds ``--rows`` products, then
imports a ``sku,quantity`` file and a ``sku,delta,reason`` file for all of them, timing
the check and each chunk's transaction (the time the write lock is held), with the
process's CPU seconds and peak RSS. Target: the longest chunk ≤ 2 s.

    .venv/bin/python bench/csv_import.py [--rows N] [--chunk N] [--database URL]
                                         # default 200,000 rows, csvio.APPLY_CHUNK
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from marketsync.core.cli import csvio  # noqa: E402
from marketsync.core.store import Store
from marketsync.core.store.models import Product


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, help=f"rows per transaction "
                        f"(default csvio.APPLY_CHUNK = {csvio.APPLY_CHUNK})")
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.chunk:
        csvio.APPLY_CHUNK = args.chunk
    print("command: .venv/bin/python bench/csv_import.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as directory:
        url = args.database or f"sqlite:///{Path(directory) / 'bench.db'}"
        with Store(url) as store:
            store.upgrade()
            for start in range(0, args.rows, 50_000):
                store.run_blocking(lambda s, a=start: s.execute(insert(Product), [
                    {"sku": f"SKU-{n:07d}", "on_hand": 0, "reserved": 0}
                    for n in range(a, min(a + 50_000, args.rows))]))
            chunks: list[float] = []
            real_run = store.run_blocking

            def timed(fn, *a, **k):
                started = time.perf_counter()
                try:
                    return real_run(fn, *a, **k)
                finally:
                    chunks.append(time.perf_counter() - started)

            store.run_blocking = timed  # type: ignore[method-assign]
            for kind, body in (("quantity", "sku,quantity\n" + "".join(
                    f"SKU-{n:07d},{n % 50}\n" for n in range(args.rows))),
                               ("delta", "sku,delta,reason\n" + "".join(
                    f"SKU-{n:07d},+3,delivery\n" for n in range(args.rows)))):
                chunks.clear()
                cpu = common.cpu_seconds()
                started = time.perf_counter()
                check_started = time.perf_counter()
                store.read_blocking(csvio.check_stock, body, "bench.csv")
                check = time.perf_counter() - check_started
                done = csvio.import_stock(store, body, "bench.csv")
                total = time.perf_counter() - started
                print(f"{kind:8} rows {done.applied:>9,}  total {total:7.1f} s "
                      f"({done.applied / total:,.0f} rows/s, CPU "
                      f"{common.cpu_seconds() - cpu:.1f} s)  check (read, no lock) "
                      f"{check:5.1f} s  chunks of {csvio.APPLY_CHUNK}: {len(chunks):>4}  "
                      f"lock held per chunk: median {statistics.median(chunks):.2f} s, "
                      f"p99 {statistics.quantiles(chunks, n=100)[98]:.2f} s, "
                      f"max {max(chunks):.2f} s  peak RSS {common.peak_rss_mib():.0f} MiB",
                      flush=True)


if __name__ == "__main__":
    main()
