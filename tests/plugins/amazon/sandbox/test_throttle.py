"""Usage-plan token buckets: burst, lazy refill, scope, and what a 429 looks like."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import trio

from marketsync.plugins.amazon.sandbox.gateway import QUOTA_MESSAGE
from marketsync.plugins.amazon.sandbox.throttle import Throttle, load_plans

from .conftest import EU, NA

PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"  # 0.016 rps, burst 15
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def test_plans_come_from_the_usage_plans_table():
    plans = load_plans()
    assert (plans["searchOrders"].rate, plans["searchOrders"].burst) == (0.0056, 20)
    assert (plans["confirmShipment"].rate, plans["confirmShipment"].burst) == (2.0, 10)
    assert "createInventoryItem" not in plans  # sandbox-only, no plan


def test_ambiguous_operation_ids_resolve_by_api():
    plans = load_plans()
    assert plans["getOrder"].key == "orders/2026-01-01:getOrder"
    assert plans["orders/v0:getOrder"].version == "v0"
    assert plans["fulfillmentOutbound:getOrder"].api == "fulfillmentOutbound"


def test_bucket_arithmetic():
    """Burst first, then one token per 1/rate seconds, never above burst."""
    throttle = Throttle()
    results = [throttle.take(NA, "confirmShipment", T0) for _ in range(11)]
    assert results[:10] == [2.0] * 10 and results[10] is False
    assert throttle.take(NA, "confirmShipment", T0 + timedelta(seconds=0.4)) is False
    assert throttle.take(NA, "confirmShipment", T0 + timedelta(seconds=0.5)) == 2.0
    assert throttle.tokens(NA, "confirmShipment", T0 + timedelta(hours=1)) == 10.0


def test_operations_without_a_plan_are_never_throttled():
    throttle = Throttle()
    assert all(throttle.take(NA, "addInventory", T0) is None for _ in range(100))


def test_sliding_window_helper():
    throttle = Throttle()
    assert all(throttle.window_allows("EU", T0 + timedelta(seconds=i)) for i in range(5))
    assert not throttle.window_allows("EU", T0 + timedelta(seconds=10))
    assert throttle.window_allows("EU", T0 + timedelta(minutes=5, seconds=1))


async def test_burst_then_429_with_official_body(client):
    for _ in range(15):
        response = await client.get(PARTICIPATIONS)
        assert response.status_code == 200
        assert response.headers["x-amzn-RateLimit-Limit"] == "0.016"
    throttled = await client.get(PARTICIPATIONS)
    assert throttled.status_code == 429
    assert throttled.json() == {"errors": [{"code": "QuotaExceeded", "message": QUOTA_MESSAGE}]}
    assert "x-amzn-RequestId" in throttled.headers
    assert "x-amzn-RateLimit-Limit" not in throttled.headers


async def test_refill_follows_the_world_clock(client, autojump_clock):
    for _ in range(15):
        await client.get(PARTICIPATIONS)
    await trio.sleep(1 / 0.016 - 1)
    assert (await client.get(PARTICIPATIONS)).status_code == 429
    await trio.sleep(2)
    assert (await client.get(PARTICIPATIONS)).status_code == 200
    assert (await client.get(PARTICIPATIONS)).status_code == 429


async def test_each_account_has_its_own_bucket(client, login):
    for _ in range(16):
        await client.get(PARTICIPATIONS)
    other = await client.get(PARTICIPATIONS, headers=await login(EU))
    assert other.status_code == 200


async def test_marketplaces_of_one_account_share_the_bucket(client):
    """Searching US and CA separately drains the one NA bucket (burst 20)."""
    query = {"createdAfter": "2026-11-01T00:00:00Z"}
    statuses = [
        (await client.get("/orders/2026-01-01/orders", params={**query, "marketplaceIds": mid})).status_code
        for mid in ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"] * 11
    ]
    assert statuses[:20] == [200] * 20 and statuses[20:] == [429, 429]


async def test_calls_are_logged_with_simulated_time_and_status(client, world, autojump_clock):
    await client.get(PARTICIPATIONS)
    record = world.calls[-1]
    assert (record.operation, record.status, record.seller_id) == ("getMarketplaceParticipations", 200, NA)
    assert record.at == world.now()
