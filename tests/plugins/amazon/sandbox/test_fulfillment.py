"""Multi-Channel Fulfillment in the simulator: create, progress, tracking, cancel, list."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import httpx
import pytest
import trio

from marketsync.core import clock
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

SELLER, CLIENT = "A1MCFTESTNA1", "amzn1.application-oa2-client.mcftest"
US = "ATVPDKIKX0DER"
MODEL = "fulfillmentOutbound_2020-07-01.json"
BASE = "/fba/outbound/2020-07-01"
HOUR = 3600
SCENARIO = {
    "seed": 21,
    "applications": [{"client_id": CLIENT, "client_secret": "secret"}],
    "accounts": [{"seller_id": SELLER, "region": "NA", "marketplaces": ["US", "CA"]}],
    "catalog": [
        {"sku": "SPORK", "asin": "B0MC000001", "title": "Spork", "fba_quantity": 10,
         "prices": {"US": "5.00"}},
        {"sku": "MUG", "asin": "B0MC000002", "title": "Mug", "mfn_quantity": 10,
         "prices": {"US": "9.00"}},
    ],
}
ORDER = {
    "sellerFulfillmentOrderId": "SHOP-1001", "displayableOrderId": "SHOP-1001",
    "displayableOrderDate": "2026-03-02T08:55:00Z", "displayableOrderComment": "Thank you!",
    "shippingSpeedCategory": "Standard",
    "destinationAddress": {"name": "Jane Doe", "addressLine1": "1 Main St", "city": "Seattle",
                           "stateOrRegion": "WA", "postalCode": "98101", "countryCode": "US"},
    "items": [{"sellerSku": "SPORK", "sellerFulfillmentOrderItemId": "1", "quantity": 3}],
}


@pytest.fixture
async def sim():
    clock.set_start(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    world = World(parse_scenario(SCENARIO))
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(transport=transport, base_url=world.base_url) as client:
        await relogin(world, client)
        yield world, client


async def relogin(world: World, client: httpx.AsyncClient) -> None:
    """Access tokens last an hour; long simulated waits need a fresh one."""
    token, _ = world.issue_access_token(SELLER, CLIENT, world.now())
    client.headers["x-amz-access-token"] = token


async def create(client: httpx.AsyncClient, **changes) -> httpx.Response:
    body = copy.deepcopy(ORDER)
    body.update(changes)
    return await client.post(f"{BASE}/fulfillmentOrders", json=body)


async def get(client: httpx.AsyncClient, order_id: str = "SHOP-1001") -> dict:
    answer = await client.get(f"{BASE}/fulfillmentOrders/{order_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["payload"]


async def test_order_progresses_to_complete_with_carrier_and_tracking(sim, autojump_clock,
                                                                     contract):
    world, client = sim
    created = await create(client)
    assert created.status_code == 200 and created.json() == {}
    contract(created, MODEL, "createFulfillmentOrder")
    seen = []
    for hours in (0, 1, 3, 7):
        await trio.sleep(hours * HOUR - (seen[-1][0] if seen else 0) * HOUR)
        await relogin(world, client)
        answer = await client.get(f"{BASE}/fulfillmentOrders/SHOP-1001")
        contract(answer, MODEL, "getFulfillmentOrder")
        payload = answer.json()["payload"]
        seen.append((hours, payload["fulfillmentOrder"]["fulfillmentOrderStatus"], payload))
    assert [status for _, status, _ in seen] == ["Received", "Planning", "Processing", "Complete"]
    assert "fulfillmentShipments" not in seen[1][2]
    pending = seen[2][2]["fulfillmentShipments"][0]
    assert pending["fulfillmentShipmentStatus"] == "PENDING"
    assert "fulfillmentShipmentPackage" not in pending, "no package before shipping"
    shipped = seen[3][2]["fulfillmentShipments"][0]
    assert shipped["fulfillmentShipmentStatus"] == "SHIPPED"
    [package] = shipped["fulfillmentShipmentPackage"]
    assert package["carrierCode"] == "UPS" and package["trackingNumber"].startswith("1Z")
    assert shipped["fulfillmentShipmentItem"][0]["packageNumber"] == package["packageNumber"]


async def test_tracking_details_move_from_in_transit_to_delivered(sim, autojump_clock,
                                                                  contract):
    world, client = sim
    await create(client)
    await trio.sleep(7 * HOUR)
    await relogin(world, client)
    package = (await get(client))["fulfillmentShipments"][0]["fulfillmentShipmentPackage"][0]
    number = package["packageNumber"]
    transit = await client.get(f"{BASE}/tracking", params={"packageNumber": number})
    contract(transit, MODEL, "getPackageTrackingDetails")
    assert transit.json()["payload"]["currentStatus"] == "IN_TRANSIT"
    assert transit.json()["payload"]["trackingNumber"] == package["trackingNumber"]
    await trio.sleep(3 * 24 * HOUR)
    await relogin(world, client)
    delivered = await client.get(f"{BASE}/tracking", params={"packageNumber": number})
    contract(delivered, MODEL, "getPackageTrackingDetails")
    payload = delivered.json()["payload"]
    assert payload["currentStatus"] == "DELIVERED"
    assert payload["trackingEvents"][-1]["eventCode"] == "EVENT_301"
    unknown = await client.get(f"{BASE}/tracking", params={"packageNumber": 1})
    assert unknown.status_code == 404
    contract(unknown, MODEL, "getPackageTrackingDetails")
    bad = await client.get(f"{BASE}/tracking", params={"packageNumber": "abc"})
    assert bad.status_code == 400


async def test_fba_stock_is_reserved_then_shipped(sim, autojump_clock):
    world, client = sim
    await create(client)
    stock = world.catalog.get(SELLER, "SPORK").fba
    assert (stock.fulfillable, stock.reserved) == (7, 3)
    world.catalog.timing.fba_drift_step = world.catalog.timing.fba_drift_step * 1000
    await trio.sleep(7 * HOUR)
    world.advance()
    stock = world.catalog.get(SELLER, "SPORK").fba
    assert (stock.fulfillable, stock.reserved) == (7, 0)


async def test_cancel_before_picking_restores_stock(sim, autojump_clock, contract):
    world, client = sim
    await create(client)
    await trio.sleep(HOUR)
    await relogin(world, client)
    cancelled = await client.put(f"{BASE}/fulfillmentOrders/SHOP-1001/cancel")
    assert cancelled.status_code == 200
    contract(cancelled, MODEL, "cancelFulfillmentOrder")
    payload = await get(client)
    assert payload["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Cancelled"
    assert payload["fulfillmentOrderItems"][0]["cancelledQuantity"] == 3
    assert world.catalog.get(SELLER, "SPORK").fba.fulfillable == 10
    await trio.sleep(8 * HOUR)
    await relogin(world, client)
    assert (await get(client))["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Cancelled"


async def test_cancel_after_picking_started_is_refused(sim, autojump_clock, contract):
    world, client = sim
    await create(client)
    await trio.sleep(3 * HOUR)
    await relogin(world, client)
    refused = await client.put(f"{BASE}/fulfillmentOrders/SHOP-1001/cancel")
    assert refused.status_code == 400 and "Processing" in refused.json()["errors"][0]["message"]
    contract(refused, MODEL, "cancelFulfillmentOrder")
    missing = await client.put(f"{BASE}/fulfillmentOrders/NOPE/cancel")
    assert missing.status_code == 404


async def test_not_enough_stock_makes_the_order_invalid(sim, contract):
    world, client = sim
    created = await create(client, items=[{"sellerSku": "SPORK",
                                           "sellerFulfillmentOrderItemId": "1", "quantity": 11}])
    assert created.status_code == 200
    answer = await client.get(f"{BASE}/fulfillmentOrders/SHOP-1001")
    contract(answer, MODEL, "getFulfillmentOrder")
    payload = answer.json()["payload"]
    assert payload["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Invalid"
    assert payload["fulfillmentOrderItems"][0]["unfulfillableQuantity"] == 11
    assert world.catalog.get(SELLER, "SPORK").fba.fulfillable == 10


async def test_hold_orders_wait_and_expire_after_fourteen_days(sim, autojump_clock):
    world, client = sim
    await create(client, fulfillmentAction="Hold")
    await trio.sleep(2 * 24 * HOUR)
    await relogin(world, client)
    assert (await get(client))["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Received"
    await trio.sleep(13 * 24 * HOUR)
    await relogin(world, client)
    assert (await get(client))["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Cancelled"


@pytest.mark.parametrize("changes, word", [
    ({"sellerFulfillmentOrderId": "X" * 41}, "longer than 40"),
    ({"displayableOrderDate": "yesterday"}, "displayableOrderDate"),
    ({"shippingSpeedCategory": "Overnight"}, "shippingSpeedCategory"),
    ({"fulfillmentPolicy": "Maybe"}, "fulfillmentPolicy"),
    ({"destinationAddress": {"name": "J", "addressLine1": "x", "countryCode": "US"}},
     "postalCode"),
    ({"items": []}, "1..100"),
    ({"items": [{"sellerSku": "SPORK", "sellerFulfillmentOrderItemId": "1", "quantity": 0}]},
     "positive integer"),
    ({"items": [{"sellerSku": "MUG", "sellerFulfillmentOrderItemId": "1", "quantity": 1}]},
     "not an FBA SKU"),
    ({"items": [{"sellerSku": "SPORK", "sellerFulfillmentOrderItemId": "1", "quantity": 1},
                {"sellerSku": "SPORK", "sellerFulfillmentOrderItemId": "1", "quantity": 1}]},
     "not unique"),
    ({"marketplaceId": "A1PA6795UKMFR9"}, "marketplaceId"),
])
async def test_create_validates_per_the_model(sim, contract, changes, word):
    world, client = sim
    answer = await create(client, **changes)
    assert answer.status_code == 400
    contract(answer, MODEL, "createFulfillmentOrder")
    assert word in answer.json()["errors"][0]["message"]


async def test_order_id_is_unique_per_seller(sim):
    world, client = sim
    assert (await create(client)).status_code == 200
    again = await create(client)
    assert again.status_code == 400 and "already exists" in again.json()["errors"][0]["message"]


async def test_list_all_pages_and_filters_by_update_time(sim, autojump_clock, contract):
    world, client = sim
    world.catalog.timing.mcf_page_size = 2
    for n in range(3):
        await create(client, sellerFulfillmentOrderId=f"SHOP-{n}", displayableOrderId=f"S{n}",
                     items=[{"sellerSku": "SPORK", "sellerFulfillmentOrderItemId": "1",
                             "quantity": 1}])
    first = await client.get(f"{BASE}/fulfillmentOrders")
    contract(first, MODEL, "listAllFulfillmentOrders")
    second = await client.get(f"{BASE}/fulfillmentOrders",
                              params={"nextToken": first.json()["payload"]["nextToken"]})
    contract(second, MODEL, "listAllFulfillmentOrders")
    ids = [o["sellerFulfillmentOrderId"] for page in (first, second)
           for o in page.json()["payload"]["fulfillmentOrders"]]
    assert ids == ["SHOP-0", "SHOP-1", "SHOP-2"]
    assert "nextToken" not in second.json()["payload"]
    await trio.sleep(HOUR)
    await relogin(world, client)
    await client.put(f"{BASE}/fulfillmentOrders/SHOP-1/cancel")
    recent = await client.get(f"{BASE}/fulfillmentOrders",
                              params={"queryStartDate": "2026-03-02T09:45:00Z"})
    assert [o["sellerFulfillmentOrderId"]
            for o in recent.json()["payload"]["fulfillmentOrders"]] == ["SHOP-1"]
