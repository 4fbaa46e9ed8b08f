"""A large ``stock import``: total time, and how long the write lock is held at a time.

Issue 12 saw a 200,000-row ``stock import`` run as one 250-s transaction, during which
every bookkeeping write of the daemon failed with "database is locked". The import now
checks every row in a read transaction and applies ``csvio.APPLY_CHUNK`` rows per write
transaction. This script builds ``--rows`` products, then imports a ``sku,quantity``
file and a ``sku,delta,reason`` file for all of them, timing the check and each chunk's
transaction (the time the write lock is held). Target: the longest chunk ≤ 2 s.

    .venv/bin/python bench/csv_import.py [--rows N] [--database URL]   # default 200,000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from marketsync.core.cli import csvio
from marketsync.core.store import Store
from marketsync.core.store.models import Product


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
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
                started = time.perf_counter()
                check_started = time.perf_counter()
                store.read_blocking(csvio.check_stock, body, "bench.csv")
                check = time.perf_counter() - check_started
                done = csvio.import_stock(store, body, "bench.csv")
                total = time.perf_counter() - started
                print(f"{kind:8} rows {done.applied:>9,}  total {total:7.1f} s  "
                      f"check (read, no lock) {check:5.1f} s  chunks {len(chunks):>4}  "
                      f"lock held per chunk: median {statistics.median(chunks):.2f} s, "
                      f"max {max(chunks):.2f} s")


if __name__ == "__main__":
    main()
