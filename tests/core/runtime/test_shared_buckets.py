"""Governor buckets in the database: replicas together stay inside one usage plan.

Three governors, each with its own ``SharedBuckets`` over its own connection pool (three
replicas), hammer one bucket under the MockClock; together they must get no more than one
in-process governor would (burst + rate × time), and not much less.
"""

from __future__ import annotations

from datetime import datetime, timezone

import trio

from marketsync.core import clock
from marketsync.core.runtime.governor import Governor
from marketsync.core.runtime.shared_buckets import SharedBuckets
from marketsync.core.store import Store

KEY = ("amazon", "eu", "getOrders")
RATE, BURST = 0.5, 10
SECONDS = 60.0


async def test_three_replicas_share_one_bucket(store: Store, autojump_clock) -> None:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    stores = [store, Store(store.url), Store(store.url)]
    governors = [Governor(SharedBuckets(db)) for db in stores]
    for governor in governors:
        governor.define(KEY, RATE, BURST)
    granted: list[float] = []
    start = trio.current_time()

    async def hammer(governor: Governor) -> None:
        while True:
            await governor.acquire(KEY)
            granted.append(trio.current_time() - start)

    try:
        with trio.move_on_after(SECONDS):
            async with trio.open_nursery() as nursery:
                for governor in governors:
                    nursery.start_soon(hammer, governor)
    finally:
        for db in stores[1:]:
            db.close()
    bound = BURST + RATE * SECONDS
    assert len(granted) <= bound
    assert len(granted) >= bound - 2, "the shared bucket should be used fully"
    # the burst first, then one every 1/RATE seconds across all three
    assert sum(1 for t in granted if t < 0.01) == BURST


async def test_a_429_seen_by_one_replica_empties_the_bucket_for_all(store: Store,
                                                                    autojump_clock) -> None:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    other = Store(store.url)
    try:
        first, second = Governor(SharedBuckets(store)), Governor(SharedBuckets(other))
        for governor in (first, second):
            governor.define(KEY, RATE, BURST)
        await first.acquire(KEY)
        await first.observe(KEY, 429, {}, None)
        before = trio.current_time()
        await second.acquire(KEY)
        # emptied: the next token is a whole (penalty-free on this replica) interval away
        assert trio.current_time() - before >= 1 / RATE - 0.01
    finally:
        other.close()


async def test_a_rate_learnt_from_the_channel_keeps_the_tokens_left(store: Store,
                                                                   autojump_clock) -> None:
    """The published plan is slow (one per minute); the channel reports 100× that. The
    tokens left must stay tokens, not become an hour of debt at the new rate."""
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    governor = Governor(SharedBuckets(store))
    governor.define(KEY, 1 / 60, 15)
    await governor.acquire(KEY)
    await governor.observe(KEY, 200, {"x-amzn-ratelimit-limit": "1.6667"},
                           "x-amzn-RateLimit-Limit")
    before = trio.current_time()
    for _ in range(14):  # what is left of the burst: no wait
        await governor.acquire(KEY)
    assert trio.current_time() - before < 0.01
    await governor.acquire(KEY)  # then one per 0.6 s
    assert 0.5 < trio.current_time() - before < 0.7
