"""The Amazon plugin as the core sees it: its manifest and every hook through the loader."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from marketsync.core import clock

from marketsync.core.runtime import plugins
from marketsync.core.errors import RecordRejected
from marketsync.core.types import (
    Cursor,
    FulfillmentRef,
    Money,
    PriceUpdate,
    Priority,
    Shipment,
    ShipmentLine,
    StockUpdate,
)
from marketsync.plugins.amazon import manifest

from .conftest import EU, REDIRECT_URI


@pytest.fixture
def amazon():
    return plugins.build(load_entry_points=False).channel("amazon")


def test_manifest_describes_the_channel():
    info = manifest.INFO
    assert info.name == "amazon" and len(info.marketplaces) == 23
    assert info.rate_limit_header == "x-amzn-RateLimit-Limit"
    assert {"client_secret", "refresh_token"} <= info.secret_credentials
    assert "app_id" in info.credential_keys and "seller_id" in info.credential_keys
    jobs = {job.kind: job for job in info.jobs}
    assert jobs["import_orders"].priority is Priority.ORDERS
    # one poll per account at 90 % of searchOrders' 0.0056 rps: every 199 s, not 600 s
    assert jobs["import_orders"].scope == "account" and jobs["import_orders"].every == 199
    assert 1 / jobs["import_orders"].every <= 0.9 * info.usage_plans["searchOrders"].rate
    assert jobs["import_products"].every == 2700 and jobs["fetch_tracking"].every == 900
    assert jobs["confirm_shipment"].priority is Priority.URGENT
    plans = info.usage_plans
    assert (plans["searchOrders"].rate, plans["searchOrders"].burst) == (0.0056, 20)
    assert (plans["getOrder"].rate, plans["getOrder"].burst) == (0.5, 30)  # v2026, not MCF
    assert (plans["confirmShipment"].rate, plans["confirmShipment"].burst) == (2.0, 10)


async def test_marketplaces_of_one_account_share_buckets(make_integration):
    de, uk = make_integration("DE"), make_integration("UK")
    us = make_integration("US")
    assert manifest.bucket_key(de, "searchOrders") == manifest.bucket_key(uk, "searchOrders")
    assert manifest.bucket_key(de, "searchOrders") != manifest.bucket_key(us, "searchOrders")
    assert manifest.bucket_key(de, "searchOrders") != manifest.bucket_key(de, "getOrder")


def test_the_loader_routes_every_channel_hook_to_the_plugin(amazon):
    from marketsync.core.hookspecs import CHANNEL_HOOKS

    assert amazon.implemented == frozenset(CHANNEL_HOOKS)


async def test_every_hook_answers_through_the_loader(amazon, make_integration, autojump_clock):
    de = make_integration("DE")
    info = await amazon.call("check_credentials", integration=de)
    assert "DE" in info.marketplaces
    # an account's first order import asks for the all-orders report (order_report.py)
    page = await amazon.call("import_orders", integration=de, cursor=Cursor())
    assert not page.done and page.next.state["backfill"]["report_id"]
    page = await amazon.call("import_orders", integration=de,
                             cursor=Cursor(since=clock.now() - timedelta(days=1)))
    assert page.items
    page = await amazon.call("import_products", integration=de, cursor=Cursor())
    assert not page.done and page.next.state["report_id"]
    page = await amazon.call("import_stock", integration=de, cursor=Cursor())
    assert {s.channel_sku for s in page.items} == {"SPORK-FBA", "STOVE-FBA"}
    submission = await amazon.call("push_stock", integration=de, updates=[
        StockUpdate(channel_sku="MUG-1", quantity=3)])
    assert submission.results[0].accepted
    submission = await amazon.call("push_prices", integration=de, updates=[
        PriceUpdate(channel_sku="MUG-1", price=Money(amount=Decimal("7.77"), currency="EUR"))])
    assert submission.results[0].accepted
    report = await amazon.call("poll_submission", integration=de, submission=submission)
    assert report.done
    url = amazon.call_sync("authorization_url", integration=de, state="s1",
                           redirect_uri=REDIRECT_URI)
    answer = await de.http.get(url)
    assert answer.status_code == 302
    redirect = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    stored = await amazon.call("complete_authorization", integration=de, params=redirect,
                               redirect_uri=REDIRECT_URI)
    assert stored["refresh_token"].startswith("Atzr|") and stored["seller_id"] == EU
    with pytest.raises(RecordRejected, match="not found"):
        await amazon.call("confirm_shipment", integration=de, shipment=Shipment(
            key="k", channel_order_id="302-0000000-0000000", marketplace="DE", carrier="DHL",
            tracking_number="1", shipped_at=clock.now() - timedelta(hours=1),
            lines=(ShipmentLine(channel_item_id="1", quantity=1),)))
    tracking = await amazon.call("fetch_tracking", integration=de, fulfillments=[
        FulfillmentRef(fulfillment_order_id="none", marketplace="DE")])
    assert list(tracking) == []


async def test_sandbox_app_hook_serves_the_default_scenario(amazon):
    app = amazon.call_sync("sandbox_app", scenario=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sandbox.local") as client:
        answer = await client.get("/_sandbox/credentials")
    assert answer.status_code == 200
    assert "A2SANDBOXEU0001" in answer.text
