"""The governor's buckets in the database, so that replicas together keep to each usage plan.

A ``BucketBackend`` (``core/runtime/governor.py``) whose every ``try_take`` and ``drain``
is one statement of ``core/store/rate_buckets.py``. Ordering, priorities, penalties after
a 429 and adopted rates stay in each process's ``Governor``; only the token count is
shared. A single daemon keeps the in-process buckets: this costs one database round trip
per governed call (``bench/shared_buckets.py``: 17 ms wall, 2.8 ms CPU per acquire on the
shared 2-core machine, against 0.04 ms in process), worth it only when another process
spends the same account's tokens.

Bucket statements are not fenced by the running job's lease: they guard the channel's
limits, not our data, and a token taken by a job that then learns it lost its lease is
only a token unused.
"""

from __future__ import annotations

from marketsync.core import clock
from marketsync.core.runtime.governor import BucketKey, Limits
from marketsync.core.store import Store, leases, rate_buckets


def bucket_name(key: BucketKey) -> str:
    return "/".join(str(part) for part in key)


class SharedBuckets:
    """GCRA buckets in the store; ``level`` answers from the last statement's result."""

    def __init__(self, store: Store) -> None:
        self._store = store
        #: per key: the bucket's timestamp as trio time, from the last statement
        self._tat: dict[BucketKey, float] = {}

    async def try_take(self, key: BucketKey, cost: int, now: float, limits: Limits) -> float:
        wall = clock.timestamp()
        wait, tat = await self._unfenced(rate_buckets.take, bucket_name(key), cost,
                                         limits.rate, limits.burst, wall)
        self._tat[key] = now + (tat - wall)
        return wait

    async def drain(self, key: BucketKey, now: float, limits: Limits) -> None:
        wall = clock.timestamp()
        tat = await self._unfenced(rate_buckets.drain, bucket_name(key), limits.rate,
                                   limits.burst, wall)
        self._tat[key] = now + (tat - wall)

    def level(self, key: BucketKey, now: float, limits: Limits) -> float:
        tat = self._tat.get(key)
        if tat is None:
            return float(limits.burst)
        return max(0.0, limits.burst - max(0.0, tat - now) * limits.rate)

    async def _unfenced(self, fn, *args):
        token = leases.current_fence.set(None)
        try:
            return await self._store.run(fn, *args)
        finally:
            leases.current_fence.reset(token)

    def __repr__(self) -> str:
        return f"<SharedBuckets in {self._store.masked_url}, {len(self._tat)} keys seen>"
