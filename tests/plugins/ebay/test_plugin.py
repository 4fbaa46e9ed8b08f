"""The eBay plugin against the simulated eBay: connect, orders, products, pushes, shipments."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from marketsync.core import clock
from marketsync.core.errors import IntegrationAuthFailed, RecordRejected, Throttled
from marketsync.core.types import (
    Cursor,
    Money,
    OrderStatus,
    PriceUpdate,
    Shipment,
    ShipmentLine,
    StockUpdate,
)
from marketsync.plugins import ebay as plugin
from marketsync.plugins.ebay import manifest
from marketsync.plugins.ebay import orders as ebay_orders

from .conftest import ACCEPT_URL, SELLER


async def orders_page(integration, cursor=Cursor(), members=None):
    """One page, as the core asks for it: the lead integration, the account's members."""
    return await plugin.import_orders(integration, tuple(members or (integration,)), cursor)


async def drain_orders(integration, cursor=Cursor(), members=None):
    """Every page of one import run, as the core would ask for them."""
    found, rejected = [], []
    while True:
        page = await orders_page(integration, cursor, members)
        found += page.items
        rejected += page.rejected
        cursor = page.next
        if page.done:
            return found, rejected, cursor


async def test_connect_through_the_runame_then_check(make_integration, world, app):
    integration = make_integration("US", credentials={"refresh_token": ""})
    url = plugin.authorization_url(integration, "state-123", ACCEPT_URL)
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == ["marketsync-test-ru"] and query["state"] == ["state-123"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as browser:
        consent = await browser.get(url)
    back = parse_qs(urlsplit(consent.headers["location"]).query)
    assert consent.headers["location"].startswith(ACCEPT_URL) and back["state"] == ["state-123"]
    credentials = await plugin.complete_authorization(integration, {"code": back["code"][0]},
                                                      ACCEPT_URL)
    assert set(credentials) == {"refresh_token"}
    integration.credentials = {**integration.credentials, **credentials}
    reported: list[tuple] = []
    integration.report_quota = lambda *args: reported.append(args)
    info = await plugin.check_credentials(integration)
    assert info.seller_id == SELLER and "GB" in info.marketplaces
    assert {r[0] for r in reported} >= {"getOrders", "getInventoryItems"}
    orders_quota = next(r for r in reported if r[0] == "getOrders")
    assert orders_quota[1] == 100_000 and orders_quota[3] > clock.now()
    with pytest.raises(IntegrationAuthFailed):  # a code is good once
        await plugin.complete_authorization(integration, {"code": back["code"][0]}, ACCEPT_URL)


async def test_revoked_consent_is_an_auth_failure(make_integration, sandbox):
    integration = make_integration("US")
    await plugin.check_credentials(integration)
    await sandbox.post("/_sandbox/revoke", json={"user_id": SELLER})
    with pytest.raises(IntegrationAuthFailed):
        await orders_page(integration)


async def test_integrations_of_one_account_share_one_token(make_integration, world):
    us, gb = make_integration("US"), make_integration("GB")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(orders_page, us)
        nursery.start_soon(orders_page, gb)
    assert [c.operation for c in world.calls].count("token") == 1


async def test_orders_split_by_marketplace_with_cancellations(make_integration, world, autojump_clock):
    await trio.sleep(12 * 3600)
    us_orders, _, cursor = await drain_orders(make_integration("US"))
    gb_orders, _, _ = await drain_orders(make_integration("GB"))
    raw = world.orders[SELLER]
    assert {o.channel_order_id for o in us_orders} | {o.channel_order_id for o in gb_orders} == set(raw)
    assert {o.marketplace for o in us_orders} == {"US"} and {o.marketplace for o in gb_orders} == {"GB"}
    cancelled = {i for i, o in raw.items() if o["cancelStatus"]["cancelState"] == "CANCELED"}
    assert cancelled and {o.channel_order_id for o in us_orders + gb_orders
                          if o.status is OrderStatus.CANCELED} == cancelled
    sample = us_orders[0]
    assert sample.items[0].channel_sku in ("MUG-1", "KETTLE-1")
    assert sample.shipping_address is not None and sample.shipping_address.country_code == "US"
    assert cursor.since == clock.now() - ebay_orders.LAG


async def test_the_next_window_overlaps_and_finds_late_changes(make_integration, sandbox, autojump_clock):
    integration = make_integration("US")
    _, _, cursor = await drain_orders(integration)
    await trio.sleep(60)
    sold = (await sandbox.post("/_sandbox/orders", json={"sku": "MUG-1"})).json()
    await trio.sleep(60)
    found, _, _ = await drain_orders(integration, cursor)
    assert sold["orderId"] in {o.channel_order_id for o in found}


async def test_an_order_changing_between_pages_skips_nothing(make_integration, world, sandbox,
                                                            monkeypatch, autojump_clock):
    monkeypatch.setattr(ebay_orders, "PAGE_SIZE", 5)
    await trio.sleep(8 * 3600)
    integration = make_integration("US")
    world.advance()
    expected = {i for i, o in world.orders[SELLER].items()
                if o["lineItems"][0]["listingMarketplaceId"] == "EBAY_US"}
    first = await orders_page(integration)
    assert not first.done
    # the newest order on the first page is cancelled now: it leaves the pinned window
    newest = first.items[0].channel_order_id
    await sandbox.post(f"/_sandbox/orders/{newest}/cancel")
    rest, _, _ = await drain_orders(integration, first.next)
    assert {o.channel_order_id for o in first.items} | {o.channel_order_id for o in rest} == expected


async def test_a_broken_order_is_rejected_without_buyer_data(make_integration, sandbox, autojump_clock):
    await sandbox.post("/_sandbox/malformed-orders", json={"kind": "unknown_status"})
    await sandbox.post("/_sandbox/malformed-orders", json={"kind": "bad_quantity"})
    await sandbox.post("/_sandbox/malformed-orders", json={"kind": "missing_line_items"})
    good = (await sandbox.post("/_sandbox/orders", json={"sku": "KETTLE-1"})).json()
    await trio.sleep(60)  # the import stays LAG behind now
    found, rejected, _ = await drain_orders(make_integration("US"))
    reasons = sorted(r.reason for r in rejected)
    assert len(rejected) == 3, reasons
    assert any("TELEPORTED" in r for r in reasons) and any("quantity" in r for r in reasons)
    assert any("lineItems missing" in r for r in reasons)
    assert all("fulfillmentStartInstructions" not in (r.raw or {}) for r in rejected)
    assert good["orderId"] in {o.channel_order_id for o in found}


async def test_products_of_the_marketplace_with_gtins(make_integration):
    integration = make_integration("US")
    page = await plugin.import_products(integration, Cursor())
    assert page.done and page.next.state == {"complete": True}
    by_sku = {listing.channel_sku: listing for listing in page.items}
    assert set(by_sku) == {"MUG-1", "KETTLE-1", "DRAFT-1"}  # TEAPOT-UK is offered on eBay GB
    assert by_sku["MUG-1"].ean == "4006381333931"
    assert by_sku["KETTLE-1"].ean == "0012345678905"  # the UPC as a 13-digit GTIN
    assert by_sku["DRAFT-1"].status == "Inactive" and by_sku["MUG-1"].status == "Active"
    assert by_sku["MUG-1"].price == Money(amount=by_sku["MUG-1"].price.amount, currency="USD")
    assert by_sku["MUG-1"].listing_id


MANY = [{"sku": f"SKU-{n:02d}", "account": SELLER, "marketplace": "EBAY_US",
         "title": f"Thing {n}", "quantity": 10, "price": "3.00"} for n in range(30)]


@pytest.mark.parametrize("scenario_changes", [{"catalog": MANY, "generator": {}}])
async def test_push_sends_25_a_call_and_reports_each_sku(make_integration, world):
    integration = make_integration("US")
    await plugin.import_products(integration, Cursor())
    updates = [StockUpdate(channel_sku=f"SKU-{n:02d}", quantity=n) for n in range(30)]
    updates.append(StockUpdate(channel_sku="GHOST", quantity=1))
    submission = await plugin.push_stock(integration, updates)
    results = {r.channel_sku: r for r in submission.results}
    assert submission.poll_after == 0 and len(results) == 31
    assert all(results[f"SKU-{n:02d}"].accepted for n in range(30))
    assert not results["GHOST"].accepted and "no offer" in results["GHOST"].message
    assert [world.offers[SELLER][f"SKU-{n:02d}"].available for n in range(30)] == list(range(30))
    bulk = [c for c in world.calls if c.operation == "bulkUpdatePriceQuantity"]
    assert len(bulk) == 2
    report = await plugin.poll_submission(integration, submission)
    assert report.done and report.results == submission.results


async def test_prices_are_pushed_in_the_offer_currency(make_integration, world):
    integration = make_integration("GB")
    await plugin.import_products(integration, Cursor())
    submission = await plugin.push_prices(integration, [PriceUpdate(
        channel_sku="TEAPOT-UK", price=Money(amount=Decimal("21.50"),
                                             currency="GBP"))])
    assert submission.results[0].accepted
    assert str(world.offers[SELLER]["TEAPOT-UK"].price) == "21.50"


async def test_revision_budget_holds_and_reports_never_exceeds(make_integration, world, sandbox,
                                                               autojump_clock):
    integration = make_integration("US", revision_limit=5, revision_reserve=1)
    await plugin.import_products(integration, Cursor())
    outcomes = []
    for quantity in range(100, 106):
        submission = await plugin.push_stock(integration, [StockUpdate(channel_sku="MUG-1",
                                                                       quantity=quantity)])
        outcomes.append(submission.results[0])
    assert [r.accepted for r in outcomes] == [True] * 4 + [False] * 2
    assert "held" in outcomes[-1].message and "revisions" in outcomes[-1].message
    listing = world.offers[SELLER]["MUG-1"].listing_id
    assert world.revisions[(listing, world.day())] == 4  # the held pushes made no call
    assert world.offers[SELLER]["MUG-1"].available == 103
    await trio.sleep(21 * 3600)  # 04:00 -> 01:00 the next day in Los Angeles
    integration.http = make_integration("US").http  # a fresh access token is fetched anyway
    later = await plugin.push_stock(integration, [StockUpdate(channel_sku="MUG-1", quantity=99)])
    assert later.results[0].accepted


async def test_channel_refusal_of_a_spent_listing_is_believed(make_integration, world, sandbox):
    world.scenario.revision_limit = 2
    integration = make_integration("US")
    await plugin.import_products(integration, Cursor())
    for quantity in (1, 2):  # the seller used the day's revisions in Seller Hub
        await sandbox.post("/_sandbox/seller-edits", json={"sku": "KETTLE-1", "quantity": quantity})
    first = await plugin.push_stock(integration, [StockUpdate(channel_sku="KETTLE-1", quantity=9)])
    assert not first.results[0].accepted and "revisions" in first.results[0].message
    calls_before = len(world.calls)
    second = await plugin.push_stock(integration, [StockUpdate(channel_sku="KETTLE-1", quantity=9)])
    assert not second.results[0].accepted and len(world.calls) == calls_before


async def test_shipment_is_confirmed_exactly_once(make_integration, world, sandbox):
    sold = (await sandbox.post("/_sandbox/orders", json={"sku": "MUG-1", "quantity": 2})).json()
    shipment = Shipment(key="ship-1", channel_order_id=sold["orderId"], marketplace="US",
                        carrier="UPS", tracking_number="1Z999", shipped_at=clock.now(),
                        lines=(ShipmentLine(channel_item_id=sold["lineItems"][0]["lineItemId"],
                                            quantity=2),))
    integration = make_integration("US")
    first = await plugin.confirm_shipment(integration, shipment)
    again = await plugin.confirm_shipment(integration, shipment)
    assert first.confirmed and not first.already_confirmed
    assert again.confirmed and again.already_confirmed
    assert len(world.fulfillments[sold["orderId"]]) == 1
    assert world.fulfillments[sold["orderId"]][0]["shippingCarrierCode"] == "UPS"
    other = Shipment(key="ship-2", channel_order_id=sold["orderId"], marketplace="US",
                     carrier="UPS", tracking_number="1Z000", shipped_at=clock.now(), lines=())
    with pytest.raises(RecordRejected):
        await plugin.confirm_shipment(integration, other)


async def test_a_cancelled_order_cannot_be_shipped(make_integration, sandbox):
    sold = (await sandbox.post("/_sandbox/orders", json={"sku": "MUG-1"})).json()
    await sandbox.post(f"/_sandbox/orders/{sold['orderId']}/cancel")
    shipment = Shipment(key="s", channel_order_id=sold["orderId"], marketplace="US",
                        carrier="USPS", tracking_number="94001", shipped_at=clock.now())
    with pytest.raises(RecordRejected, match="cancelled"):
        await plugin.confirm_shipment(make_integration("US"), shipment)


@pytest.mark.parametrize("scenario_changes", [{"quotas": {"sell.fulfillment": 4}}])
async def test_a_spent_daily_quota_throttles_without_a_call(make_integration, world, governor,
                                                            autojump_clock):
    integration = make_integration("US")
    integration.report_quota = lambda op, limit, remaining, resets: governor.adopt_quota(
        manifest.bucket_key(integration, op), limit, remaining, resets) if manifest.bucket_key(
        integration, op) in governor else None
    await orders_page(integration)  # defines the bucket
    await plugin.check_credentials(integration)  # learns 4 a day, 3 left
    spent = 0
    with pytest.raises(Throttled) as refused:
        for _ in range(10):
            await orders_page(integration)
            spent += 1
    assert spent == 2  # 4 - the first - 10 % kept for urgent work (floor(3.6) = 3 in total)
    assert refused.value.retry_after > 3600
    assert not [c for c in world.calls if c.status == 429]


async def test_production_hosts_without_an_endpoint_override(make_integration):
    """Without the simulator's endpoint, calls go to eBay's hosts: Identity on apiz."""
    import httpx as _httpx

    from marketsync.core.runtime.governor import Governor
    from marketsync.core.runtime.http import make_client

    seen: list[str] = []

    def handler(request: _httpx.Request) -> _httpx.Response:
        seen.append(f"{request.url.host}{request.url.path}")
        if request.url.path.endswith("/oauth2/token"):
            return _httpx.Response(200, json={"access_token": "t", "expires_in": 7200,
                                              "token_type": "User Access Token"})
        if request.url.path.startswith("/commerce/identity"):
            return _httpx.Response(200, json={"userId": "u1", "username": "u"})
        return _httpx.Response(200, json={"rateLimits": []})

    integration = make_integration("DE")
    integration.settings = {k: v for k, v in integration.settings.items() if k != "endpoint"}
    integration.http = make_client(_httpx.MockTransport(handler), Governor(),
                                   bucket_for=lambda op: manifest.bucket_key(integration, op),
                                   plan_for=manifest.INFO.usage_plans.get, rate_header=None)
    integration.report_quota = lambda *args: None
    info = await plugin.check_credentials(integration)
    assert info.seller_id == "u1"
    assert seen == ["api.ebay.com/identity/v1/oauth2/token", "apiz.ebay.com/commerce/identity/v1/user/",
                    "api.ebay.com/developer/analytics/v1_beta/rate_limit/"]
    url = plugin.authorization_url(integration, "s", "http://127.0.0.1:8470/cb")
    assert url.startswith("https://auth.ebay.com/oauth2/authorize?")
