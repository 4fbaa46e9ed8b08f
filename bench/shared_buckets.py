"""What a governed call costs with the rate-limit buckets in PostgreSQL (several replicas).

Takes ``--calls`` tokens from a bucket with room for all of them, once from the in-process
buckets and once from ``SharedBuckets`` on a fresh schema of ``--database`` (default: the
test server), and prints the wall and CPU time per acquire. The shared figure is one
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` through a worker thread.

    .venv/bin/python bench/shared_buckets.py [--calls N] [--database URL]
"""

from __future__ import annotations

import argparse
import time
import uuid

import trio
from sqlalchemy import create_engine

from marketsync.core.runtime.governor import Governor
from marketsync.core.runtime.shared_buckets import SharedBuckets
from marketsync.core.store import Store

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEY = ("amazon", "eu", "patchListingsItem")


async def measure(governor: Governor, calls: int) -> tuple[float, float]:
    governor.define(KEY, 1e9, calls + 1)  # never waits: the cost of the bookkeeping only
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await governor.acquire(KEY)
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--database", default=DEFAULT_URL)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.database, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{args.database}?options=-csearch_path%3D{schema}"
    try:
        with Store(url) as store:
            store.upgrade()
            local = trio.run(measure, Governor(), args.calls)
            shared = trio.run(measure, Governor(SharedBuckets(store)), args.calls)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
    for name, (wall, cpu) in (("in-process", local), ("PostgreSQL", shared)):
        print(f"{name:>11}: {wall * 1e3:.3f} ms wall, {cpu * 1e3:.3f} ms CPU per acquire "
              f"({args.calls} acquires)")


if __name__ == "__main__":
    main()
