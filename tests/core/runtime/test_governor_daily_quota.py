"""Daily quotas ("N calls per day, starting again at a fixed time") in the governor."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import httpx
import pytest
import trio

from marketsync.core import clock
from marketsync.core.errors import Throttled
from marketsync.core.runtime.governor import Governor
from marketsync.core.runtime.http import OPERATION, make_client
from marketsync.core.types import DailyQuota, Priority, UsagePlan

KEY = ("ebay", "app", "sell.inventory")
# 23:00 in Los Angeles on 2 November 2026 (PST, UTC-8) is 07:00 UTC on the 3rd
LATE_EVENING_PACIFIC = datetime(2026, 11, 3, 7, 0, tzinfo=timezone.utc)
PACIFIC = DailyQuota(limit=10, resets_at=time(0), timezone="America/Los_Angeles", reserve=0.2)


async def test_spent_quota_refuses_until_the_local_reset(autojump_clock):
    clock.set_start(LATE_EVENING_PACIFIC)
    governor = Governor()
    governor.define(KEY, rate=100.0, burst=100)
    governor.define_quota(KEY, PACIFIC)
    for _ in range(10):
        await governor.acquire(KEY, Priority.URGENT)
    assert governor.quota_left(KEY) == 0
    with pytest.raises(Throttled) as refused:
        await governor.acquire(KEY, Priority.URGENT)
    # one hour to Pacific midnight: the job is told to come back then, not kept waiting
    assert refused.value.retry_after == pytest.approx(3600.0, abs=1.0)
    assert governor.state(KEY).acquired == 10
    await trio.sleep(3601)
    await governor.acquire(KEY, Priority.URGENT)
    assert governor.quota_left(KEY) == 9


async def test_reserve_is_kept_for_urgent_work(autojump_clock):
    clock.set_start(LATE_EVENING_PACIFIC)
    governor = Governor()
    governor.define(KEY, rate=100.0, burst=100)
    governor.define_quota(KEY, PACIFIC)
    for _ in range(8):  # 10 * (1 - 0.2)
        await governor.acquire(KEY, Priority.BACKFILL)
    with pytest.raises(Throttled, match="kept for urgent work"):
        await governor.acquire(KEY, Priority.PRODUCTS)
    await governor.acquire(KEY, Priority.URGENT)
    await governor.acquire(KEY, Priority.URGENT)
    with pytest.raises(Throttled):
        await governor.acquire(KEY, Priority.URGENT)


async def test_waiters_are_refused_when_others_spend_the_quota_meanwhile(autojump_clock):
    """The token bucket makes calls queue; the quota is checked again when served."""
    clock.set_start(LATE_EVENING_PACIFIC)
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=1)
    governor.define_quota(KEY, DailyQuota(limit=3, timezone="America/Los_Angeles", reserve=0))
    outcomes: list[str] = []

    async def call() -> None:
        try:
            await governor.acquire(KEY, Priority.URGENT)
            outcomes.append("ok")
        except Throttled:
            outcomes.append("refused")

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(call)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 2
    assert governor.state(KEY).acquired == 3


async def test_live_figures_win_over_our_count(autojump_clock):
    clock.set_start(LATE_EVENING_PACIFIC)
    governor = Governor()
    governor.define(KEY, rate=100.0, burst=100)
    governor.define_quota(KEY, DailyQuota(limit=1000, timezone="America/Los_Angeles"))
    # another process of the same application already used most of the day's calls,
    # and the channel's window ends in 30 minutes, not at our idea of midnight
    resets = clock.now() + timedelta(minutes=30)
    governor.adopt_quota(KEY, limit=1000, remaining=2, resets_at=resets)
    await governor.acquire(KEY, Priority.URGENT)
    await governor.acquire(KEY, Priority.URGENT)
    with pytest.raises(Throttled) as refused:
        await governor.acquire(KEY, Priority.URGENT)
    assert refused.value.retry_after == pytest.approx(1800.0, abs=1.0)
    await trio.sleep(1801)
    assert governor.quota_left(KEY) == 1000


async def test_bad_quota_is_refused_with_its_key():
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=1)
    with pytest.raises(ValueError, match="sell.inventory.*limit"):
        governor.define_quota(KEY, DailyQuota(limit=0))


async def test_transport_learns_the_quota_from_the_usage_plan(autojump_clock):
    """No channel-specific code: the plan's ``daily`` reaches the governor on first use, and
    a spent quota fails the call before it is sent."""
    clock.set_start(LATE_EVENING_PACIFIC)
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={})

    governor = Governor()
    plan = UsagePlan(operation="getOffers", rate=10.0, burst=10,
                     daily=DailyQuota(limit=2, timezone="America/Los_Angeles", reserve=0))
    client = make_client(httpx.MockTransport(handler), governor,
                         bucket_for=lambda op: KEY, plan_for=lambda op: plan, rate_header=None)
    async with client:
        for _ in range(2):
            await client.get("http://x/offer", extensions={OPERATION: "getOffers"})
        with pytest.raises(Throttled):
            await client.get("http://x/offer", extensions={OPERATION: "getOffers"})
    assert len(sent) == 2
