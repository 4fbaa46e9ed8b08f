"""Every body the platform and orders half answers, checked against the official models."""

from __future__ import annotations

from datetime import timedelta

import trio

from marketsync.core.clock import isoformat

from .conftest import FE, START, US

SEARCH = "/orders/2026-01-01/orders"
SINCE = isoformat(START - timedelta(days=2))
ALL_DATA = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"
V2026, V0, SELLERS, TOKENS = "orders_2026-01-01.json", "ordersV0.json", "sellers.json", "tokens_2021-03-01.json"


async def test_sellers_bodies(anon, client, contract):
    contract(await client.get("/sellers/v1/marketplaceParticipations"), SELLERS, "getMarketplaceParticipations")
    contract(await anon.get("/sellers/v1/marketplaceParticipations"), SELLERS, "getMarketplaceParticipations")
    for _ in range(15):
        await client.get("/sellers/v1/marketplaceParticipations")
    throttled = await client.get("/sellers/v1/marketplaceParticipations")
    assert throttled.status_code == 429
    contract(throttled, SELLERS, "getMarketplaceParticipations")


async def test_every_generated_order_with_every_dataset(anon, client, login, contract, autojump_clock):
    """Three simulated days of orders (shipped, cancelled, confirmed, partly shipped), all datasets."""
    placed = (await anon.post("/_sandbox/orders", json={"marketplace": "US", "items": {"MUG-1": 2}})).json()
    await trio.sleep(40 * 60)
    item = placed["orderItems"][0]["orderItemId"]
    confirmed = await client.post(f"/orders/v0/orders/{placed['orderId']}/shipmentConfirmation", json={
        "marketplaceId": US, "packageDetail": {"packageReferenceId": "1", "carrierCode": "DHL", "trackingNumber": "T1",
                                               "shipDate": isoformat(START), "orderItems": [{"orderItemId": item, "quantity": 1}]}})
    contract(confirmed, V0, "confirmShipment")
    for _ in range(3):
        await trio.sleep(3000)
        client.headers.update(await login("A1TESTNA"))
        for seller in ("A1TESTNA", FE):
            headers = await login(seller)
            token, seen = None, 0
            while True:
                params = {"lastUpdatedAfter": SINCE, "includedData": ALL_DATA, "maxResultsPerPage": 40}
                response = await client.get(SEARCH, params={**params, **({"paginationToken": token} if token else {})}, headers=headers)
                contract(response, V2026, "searchOrders")
                seen += len(response.json()["orders"])
                token = response.json().get("pagination", {}).get("nextToken")
                if not token:
                    break
            assert seen > 0
    order = await client.get(f"{SEARCH}/{placed['orderId']}", params={"includedData": ALL_DATA})
    contract(order, V2026, "getOrder")
    assert order.json()["order"]["packages"][0]["packageItems"] == [{"orderItemId": item, "quantity": 1}]


async def test_v2026_error_bodies(anon, client, contract):
    contract(await client.get(SEARCH, params={"createdAfter": "TEST_CASE_400"}), V2026, "searchOrders")
    contract(await client.get(f"{SEARCH}/nope"), V2026, "getOrder")
    contract(await anon.get(SEARCH, params={"createdAfter": SINCE}), V2026, "searchOrders")
    for _ in range(20):
        await client.get(SEARCH, params={"createdAfter": SINCE})
    throttled = await client.get(SEARCH, params={"createdAfter": SINCE})
    assert throttled.status_code == 429
    contract(throttled, V2026, "searchOrders")
    await anon.post("/_sandbox/faults", json={"errorShare": {"503": 1.0}})
    contract(await client.get(f"{SEARCH}/nope"), V2026, "getOrder")


async def test_v0_bodies(anon, client, contract):
    listed = await client.get("/orders/v0/orders", params={"LastUpdatedAfter": SINCE, "MarketplaceIds": US, "MaxResultsPerPage": 3})
    contract(listed, V0, "getOrders")
    following = await client.get("/orders/v0/orders", params={
        "LastUpdatedAfter": SINCE, "MarketplaceIds": US, "NextToken": listed.json()["payload"]["NextToken"]})
    contract(following, V0, "getOrders")
    for order in listed.json()["payload"]["Orders"]:
        contract(await client.get(f"/orders/v0/orders/{order['AmazonOrderId']}"), V0, "getOrder")
        contract(await client.get(f"/orders/v0/orders/{order['AmazonOrderId']}/orderItems"), V0, "getOrderItems")
    contract(await client.get("/orders/v0/orders/nope"), V0, "getOrder")
    contract(await client.get("/orders/v0/orders/nope/orderItems"), V0, "getOrderItems")
    contract(await anon.get("/orders/v0/orders", params={"CreatedAfter": SINCE, "MarketplaceIds": US}), V0, "getOrders")
    for body in (None, {"marketplaceId": US}):
        contract(await client.post("/orders/v0/orders/nope/shipmentConfirmation", json=body), V0, "confirmShipment")
    order_id = listed.json()["payload"]["Orders"][0]["AmazonOrderId"]
    contract(await client.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json={"marketplaceId": US}), V0, "confirmShipment")


async def test_tokens_bodies(anon, client, contract):
    ok = await client.post("/tokens/2021-03-01/restrictedDataToken", json={"restrictedResources": [
        {"method": "GET", "path": "/orders/v0/orders/123-1234567-1234567/address"}]})
    contract(ok, TOKENS, "createRestrictedDataToken")
    assert ok.json()["expiresIn"] == 3600
    contract(await client.post("/tokens/2021-03-01/restrictedDataToken", content=b"{not json"), TOKENS, "createRestrictedDataToken")
    contract(await anon.post("/tokens/2021-03-01/restrictedDataToken", json={}), TOKENS, "createRestrictedDataToken")
