"""Orders v2026-01-01 searches and reads, v0 reads, confirmShipment, RDTs."""

from __future__ import annotations

from datetime import timedelta

import trio

from marketsync.core.clock import isoformat

from .conftest import AU, CA, FE, NA, START, UK, US

SEARCH = "/orders/2026-01-01/orders"
SINCE = isoformat(START - timedelta(days=2))
PAST_LAG = 121  # seconds: longer than the scenario's largest data lag
PAID = 31 * 60  # seconds: longer than the longest Pending phase (access tokens last 3600)


async def search_all(client, **params) -> list[dict]:
    orders, token = [], None
    for _ in range(100):
        query = {**params, **({"paginationToken": token} if token else {})}
        response = await client.get(SEARCH, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        orders += body["orders"]
        token = body.get("pagination", {}).get("nextToken")
        if token is None:
            return orders
    raise AssertionError("pagination never ended")


async def place(anon, marketplace: str = "US", items: dict | None = None, **extra) -> dict:
    response = await anon.post("/_sandbox/orders", json={"marketplace": marketplace, "items": items or {"MUG-1": 1}, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def confirmation(order: dict, reference: str = "1", **changes) -> dict:
    detail = {"packageReferenceId": reference, "carrierCode": "UPS", "trackingNumber": "1Z999",
              "shipDate": order["createdTime"],
              "orderItems": [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]} for i in order["orderItems"]]}
    detail.update(changes)
    return {"marketplaceId": order["salesChannel"]["marketplaceId"], "packageDetail": detail}


async def test_pages_cover_the_result_exactly_once(client, contract):
    whole = await client.get(SEARCH, params={"createdAfter": SINCE})
    contract(whole, "orders_2026-01-01.json", "searchOrders")
    everything = [o["orderId"] for o in whole.json()["orders"]]
    assert len(everything) > 12
    paged = await search_all(client, createdAfter=SINCE, maxResultsPerPage=5)
    assert [o["orderId"] for o in paged] == everything
    created = [o["createdTime"] for o in paged]
    assert created == sorted(created)


async def test_last_page_has_no_pagination_and_echoes_created_before(client, world):
    response = await client.get(SEARCH, params={"createdAfter": SINCE})
    body = response.json()
    assert "pagination" not in body
    assert body["createdBefore"] == isoformat(world.now() - timedelta(minutes=2))


async def test_pagination_token_needs_the_same_filters(client):
    first = (await client.get(SEARCH, params={"createdAfter": SINCE, "maxResultsPerPage": 2})).json()
    token = first["pagination"]["nextToken"]
    changed = await client.get(SEARCH, params={"createdAfter": SINCE, "marketplaceIds": US, "paginationToken": token})
    assert changed.status_code == 400
    assert changed.json()["errors"][0]["code"] == "InvalidInput"
    resized = await client.get(SEARCH, params={"createdAfter": SINCE, "paginationToken": token, "maxResultsPerPage": 50,
                                               "includedData": "FULFILLMENT"})
    assert resized.status_code == 200


async def test_pagination_token_lives_24_hours(client, login, autojump_clock):
    first = (await client.get(SEARCH, params={"createdAfter": SINCE, "maxResultsPerPage": 2})).json()
    await trio.sleep(24 * 3600 + 1)
    client.headers.update(await login(NA))
    late = await client.get(SEARCH, params={"createdAfter": SINCE, "paginationToken": first["pagination"]["nextToken"]})
    assert late.status_code == 400 and "expired" in late.json()["errors"][0]["message"]


async def test_time_filter_rules(client, world, contract):
    recent = isoformat(world.now() - timedelta(seconds=30))
    bad = [
        {},
        {"createdAfter": SINCE, "lastUpdatedAfter": SINCE},
        {"createdAfter": SINCE, "lastUpdatedBefore": SINCE},
        {"lastUpdatedAfter": SINCE, "createdBefore": SINCE},
        {"createdAfter": SINCE, "createdBefore": recent},
        {"createdAfter": SINCE, "createdBefore": isoformat(START - timedelta(days=3))},
        {"createdAfter": "yesterday"},
        {"createdAfter": SINCE, "maxResultsPerPage": 101},
        {"createdAfter": SINCE, "fulfillmentStatuses": "SHIPPED,LOST"},
        {"createdAfter": SINCE, "marketplaceIds": UK},
    ]
    for params in bad:
        response = await client.get(SEARCH, params=params)
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["code"] == "InvalidInput"
        assert response.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    contract(response, "orders_2026-01-01.json", "searchOrders")


async def test_fulfilled_by_filter(client):
    amazon = await search_all(client, createdAfter=SINCE, fulfilledBy="AMAZON", includedData="FULFILLMENT")
    merchant = await search_all(client, createdAfter=SINCE, fulfilledBy="MERCHANT", includedData="FULFILLMENT")
    assert amazon and merchant
    assert {o["fulfillment"]["fulfilledBy"] for o in amazon} == {"AMAZON"}
    assert {o["fulfillment"]["fulfilledBy"] for o in merchant} == {"MERCHANT"}
    both = await search_all(client, createdAfter=SINCE)
    assert len(both) == len(amazon) + len(merchant)


async def test_marketplace_and_status_filters(client):
    canada = await search_all(client, createdAfter=SINCE, marketplaceIds=CA)
    assert canada and {o["salesChannel"]["marketplaceId"] for o in canada} == {CA}
    unshipped = await search_all(client, createdAfter=SINCE, fulfillmentStatuses="UNSHIPPED", includedData="FULFILLMENT")
    assert unshipped and {o["fulfillment"]["fulfillmentStatus"] for o in unshipped} == {"UNSHIPPED"}


async def test_fulfillment_only_with_included_data(client):
    plain = (await client.get(SEARCH, params={"createdAfter": SINCE})).json()["orders"]
    assert all("fulfillment" not in o and "buyer" not in o for o in plain)


async def test_pii_withheld_without_the_roles(client, login, contract):
    """The AU account has no PII roles: no buyer, no recipient, even when asked."""
    client.headers.update(await login(FE))
    response = await client.get(SEARCH, params={"createdAfter": SINCE, "includedData": "BUYER,RECIPIENT,FULFILLMENT"})
    contract(response, "orders_2026-01-01.json", "searchOrders")
    orders = response.json()["orders"]
    assert orders and {o["salesChannel"]["marketplaceId"] for o in orders} == {AU}
    assert all("buyer" not in o and "recipient" not in o for o in orders)


async def test_pii_given_with_the_roles(client):
    orders = await search_all(client, createdAfter=SINCE, includedData="BUYER,RECIPIENT,FULFILLMENT")
    shown = [o for o in orders if o["fulfillment"]["fulfillmentStatus"] not in ("PENDING", "CANCELLED")]
    assert shown and all("buyerName" in o["buyer"] and "deliveryAddress" in o["recipient"] for o in shown)


async def test_data_lag(anon, client, autojump_clock):
    """A new order is invisible for a minute or two, then shows."""
    order = await place(anon)
    assert (await client.get(f"{SEARCH}/{order['orderId']}")).status_code == 404
    assert order["orderId"] not in [o["orderId"] for o in await search_all(client, lastUpdatedAfter=SINCE)]
    await trio.sleep(PAST_LAG + 120)
    shown = await client.get(f"{SEARCH}/{order['orderId']}", params={"includedData": "FULFILLMENT"})
    assert shown.status_code == 200
    assert shown.json()["order"]["createdTime"] == order["createdTime"]


async def test_created_after_vs_last_updated_after(anon, client, world, autojump_clock):
    """An old order that changes shows in a lastUpdatedAfter search, not a createdAfter one."""
    order = await place(anon)
    await trio.sleep(PAID)
    confirmed = await client.post(f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation", json=confirmation(order))
    assert confirmed.status_code == 204, confirmed.text
    since = isoformat(world.now() - timedelta(seconds=1))
    await trio.sleep(PAST_LAG + 120)
    updated = await search_all(client, lastUpdatedAfter=since, includedData="FULFILLMENT,PACKAGES")
    mine = [o for o in updated if o["orderId"] == order["orderId"]]
    assert mine and mine[0]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert mine[0]["packages"][0]["trackingNumber"] == "1Z999"
    created = await search_all(client, createdAfter=since)
    assert order["orderId"] not in [o["orderId"] for o in created]


async def test_confirm_shipment_again_edits_the_package(anon, client, contract, world, autojump_clock):
    """The same packageReferenceId again edits that package (Amazon's documented way to
    correct a tracking number): one package, the new tracking number, a later lastUpdatedTime."""
    order = await place(anon)
    await trio.sleep(PAID)
    path = f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation"
    first = await client.post(path, json=confirmation(order))
    contract(first, "ordersV0.json", "confirmShipment")
    await trio.sleep(600)
    again = await client.post(path, json=confirmation(order, trackingNumber="1Z777"))
    assert again.status_code == 204, again.text
    contract(again, "ordersV0.json", "confirmShipment")
    records = (await anon.get("/_sandbox/confirmations", params={"orderId": order["orderId"]})).json()["confirmations"]
    assert [(r["accepted"], r.get("edit", False)) for r in records] == [(True, False), (True, True)]
    await trio.sleep(PAST_LAG)
    shown = (await client.get(f"{SEARCH}/{order['orderId']}", params={"includedData": "PACKAGES,FULFILLMENT"})).json()["order"]
    assert [p["trackingNumber"] for p in shown["packages"]] == ["1Z777"]
    assert shown["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert shown["lastUpdatedTime"] > shown["packages"][0]["createdTime"]


async def test_an_edit_may_not_ship_more_than_was_ordered(anon, client, autojump_clock):
    """An edit replaces its package's quantities; a second package still cannot exceed them."""
    order = await place(anon, items={"MUG-1": 2})
    await trio.sleep(PAID)
    item = order["orderItems"][0]["orderItemId"]
    path = f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation"
    one = [{"orderItemId": item, "quantity": 1}]
    assert (await client.post(path, json=confirmation(order, orderItems=one))).status_code == 204
    two = [{"orderItemId": item, "quantity": 2}]
    assert (await client.post(path, json=confirmation(order, orderItems=two))).status_code == 204
    refused = await client.post(path, json=confirmation(order, "2", orderItems=one))
    assert refused.status_code == 400 and "exceeds" in refused.json()["errors"][0]["message"]


async def test_confirm_shipment_validation(anon, client, login, autojump_clock):
    order = await place(anon)
    path = f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation"
    pending = await client.post(path, json=confirmation(order))
    assert pending.status_code == 400 and "Pending" in pending.json()["errors"][0]["message"]
    await trio.sleep(PAID)
    cases = [
        {**confirmation(order), "marketplaceId": CA},
        confirmation(order, carrierCode=""),
        confirmation(order, carrierCode="Other"),
        confirmation(order, shipDate="02/21/2022"),
        confirmation(order, reference="abc"),
        confirmation(order, orderItems=[{"orderItemId": "999", "quantity": 1}]),
        confirmation(order, orderItems=[{"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 5}]),
    ]
    for body in cases:
        response = await client.post(path, json=body)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["code"] == "InvalidInput"
    missing = await client.post("/orders/v0/orders/111-0000000-0000000/shipmentConfirmation", json=confirmation(order))
    assert missing.status_code == 404
    fba = await place(anon, items={"SPORK-FBA": 1})
    await trio.sleep(PAID)
    client.headers.update(await login(NA))
    refused = await client.post(f"/orders/v0/orders/{fba['orderId']}/shipmentConfirmation", json=confirmation(fba))
    assert refused.status_code == 400 and "Amazon" in refused.json()["errors"][0]["message"]


async def test_partial_shipment(anon, client, autojump_clock):
    order = await place(anon, items={"MUG-1": 2})
    await trio.sleep(PAID)
    item = order["orderItems"][0]["orderItemId"]
    path = f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation"
    assert (await client.post(path, json=confirmation(order, orderItems=[{"orderItemId": item, "quantity": 1}]))).status_code == 204
    await trio.sleep(PAST_LAG)
    shown = (await client.get(f"{SEARCH}/{order['orderId']}", params={"includedData": "FULFILLMENT"})).json()["order"]
    assert shown["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    assert shown["orderItems"][0]["fulfillment"] == {"quantityFulfilled": 1, "quantityUnfulfilled": 1}
    assert (await client.post(path, json=confirmation(order, "2", orderItems=[{"orderItemId": item, "quantity": 1}]))).status_code == 204


async def test_get_order_and_unknown_order(client, contract):
    some = (await client.get(SEARCH, params={"createdAfter": SINCE, "maxResultsPerPage": 1})).json()["orders"][0]
    response = await client.get(f"{SEARCH}/{some['orderId']}", params={"includedData": "FULFILLMENT,PROCEEDS,CANCELLATION"})
    contract(response, "orders_2026-01-01.json", "getOrder")
    assert response.json()["order"]["orderId"] == some["orderId"]
    missing = await client.get(f"{SEARCH}/111-0000000-0000000")
    contract(missing, "orders_2026-01-01.json", "getOrder")
    assert missing.status_code == 404


async def test_orders_of_other_sellers_are_not_found(client, login):
    eu_headers = await login("A2TESTEU")
    eu_order = (await client.get(SEARCH, params={"createdAfter": SINCE, "maxResultsPerPage": 1}, headers=eu_headers)).json()["orders"][0]
    assert (await client.get(f"{SEARCH}/{eu_order['orderId']}")).status_code == 404


async def test_v0_get_orders_needs_marketplace_ids(client, contract):
    response = await client.get("/orders/v0/orders", params={"CreatedAfter": SINCE})
    assert response.status_code == 400
    contract(response, "ordersV0.json", "getOrders")
    ok = await client.get("/orders/v0/orders", params={"CreatedAfter": SINCE, "MarketplaceIds": US})
    contract(ok, "ordersV0.json", "getOrders")
    orders = ok.json()["payload"]["Orders"]
    assert orders and all("ShippingAddress" not in o for o in orders)


async def test_v0_restricted_data_token_reveals_address(client, contract):
    rdt = await client.post("/tokens/2021-03-01/restrictedDataToken", json={"restrictedResources": [
        {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["shippingAddress", "buyerInfo"]}]})
    contract(rdt, "tokens_2021-03-01.json", "createRestrictedDataToken")
    token = rdt.json()["restrictedDataToken"]
    response = await client.get("/orders/v0/orders", params={"CreatedAfter": SINCE, "MarketplaceIds": US,
                                                             "OrderStatuses": "Unshipped"},
                                headers={"x-amz-access-token": token})
    contract(response, "ordersV0.json", "getOrders")
    orders = response.json()["payload"]["Orders"]
    assert orders and all("ShippingAddress" in o and "BuyerInfo" in o for o in orders)
    elsewhere = await client.get("/sellers/v1/marketplaceParticipations", headers={"x-amz-access-token": token})
    assert elsewhere.status_code == 403


async def test_rdt_request_validation(client, contract):
    for body in ({}, {"restrictedResources": []}, {"restrictedResources": [{"method": "FETCH", "path": "/x"}]},
                 {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["dna"]}]}):
        response = await client.post("/tokens/2021-03-01/restrictedDataToken", json=body)
        assert response.status_code == 400, body
        contract(response, "tokens_2021-03-01.json", "createRestrictedDataToken")


async def test_v0_order_items(client, contract):
    some = (await client.get("/orders/v0/orders", params={"CreatedAfter": SINCE, "MarketplaceIds": US})).json()["payload"]["Orders"][0]
    response = await client.get(f"/orders/v0/orders/{some['AmazonOrderId']}/orderItems")
    contract(response, "ordersV0.json", "getOrderItems")
    assert response.json()["payload"]["AmazonOrderId"] == some["AmazonOrderId"]
    single = await client.get(f"/orders/v0/orders/{some['AmazonOrderId']}")
    contract(single, "ordersV0.json", "getOrder")


async def test_v0_next_token_alone_continues_the_search(client):
    """v0: "NextToken doesn't affect any filters" — the first request's filters hold."""
    whole = (await client.get("/orders/v0/orders", params={"CreatedAfter": SINCE, "MarketplaceIds": US})).json()["payload"]
    first = (await client.get("/orders/v0/orders", params={"CreatedAfter": SINCE, "MarketplaceIds": US,
                                                           "MaxResultsPerPage": 4})).json()["payload"]
    ids, token = [o["AmazonOrderId"] for o in first["Orders"]], first["NextToken"]
    while token:
        page = (await client.get("/orders/v0/orders", params={"NextToken": token})).json()["payload"]
        assert page["CreatedBefore"] == first["CreatedBefore"]
        ids += [o["AmazonOrderId"] for o in page["Orders"]]
        token = page.get("NextToken")
    assert ids == [o["AmazonOrderId"] for o in whole["Orders"]]
