"""The /_sandbox/ control API: orders, channel edits, faults, and reading the world back."""

from __future__ import annotations

from datetime import timedelta

import trio

from marketsync.core.clock import isoformat

from .conftest import NA, START, US

SEARCH = "/orders/2026-01-01/orders"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"
SINCE = isoformat(START - timedelta(days=2))


async def test_add_order_then_list_and_get_it(anon):
    created = await anon.post("/_sandbox/orders", json={"marketplace": "US", "items": {"MUG-1": 2, "KETTLE-1": 1}})
    assert created.status_code == 201
    order = created.json()
    assert order["sellerId"] == NA and order["salesChannel"]["marketplaceId"] == US
    assert sorted((i["product"]["sellerSku"], i["quantityOrdered"]) for i in order["orderItems"]) == [("KETTLE-1", 1), ("MUG-1", 2)]
    assert order["fulfillment"]["fulfillmentStatus"] == "PENDING"
    listed = (await anon.get("/_sandbox/orders", params={"sellerId": NA})).json()["orders"]
    assert order["orderId"] in [o["orderId"] for o in listed]
    single = await anon.get(f"/_sandbox/orders/{order['orderId']}")
    assert single.json()["events"][0]["status"] == "PENDING"
    assert (await anon.get("/_sandbox/orders/000-0000000-0000000")).status_code == 404


async def test_add_order_refuses_bad_input(anon):
    for body in ({"marketplace": "XX", "items": {"MUG-1": 1}}, {"marketplace": "US", "items": {}},
                 {"marketplace": "US", "items": {"NOPE": 1}}, {"marketplace": "US", "items": {"MUG-1": 1}, "malformed": "odd"},
                 {"marketplace": "US", "items": {"MUG-1": -1}}):
        response = await anon.post("/_sandbox/orders", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]


async def test_malformed_records(anon, client, autojump_clock):
    """An order dated 1995, an unknown enum value and a missing required field reach the API."""
    ids = {}
    for kind in ("ancient_date", "unknown_enum", "missing_field"):
        created = await anon.post("/_sandbox/orders", json={"marketplace": "US", "items": {"MUG-1": 1}, "malformed": kind})
        ids[kind] = created.json()["orderId"]
    await trio.sleep(40 * 60)  # paid (≤ 30 min), visible, and older than the 2-minute before-limit
    orders = {o["orderId"]: o for o in (await client.get(SEARCH, params={
        "lastUpdatedAfter": SINCE, "includedData": "FULFILLMENT"})).json()["orders"]}
    assert orders[ids["ancient_date"]]["createdTime"].startswith("1995-")
    assert orders[ids["unknown_enum"]]["fulfillment"]["fulfillmentStatus"] not in (
        "PENDING", "UNSHIPPED", "SHIPPED", "CANCELLED", "PARTIALLY_SHIPPED", "PENDING_AVAILABILITY", "UNFULFILLABLE")
    assert "createdTime" not in orders[ids["missing_field"]]


async def test_shape_faults(anon, client, autojump_clock):
    """Wrong JSON types where the model has an array, an object or a scalar; the buyer stays."""
    ids = {}
    for kind in ("wrong_type", "string_for_object", "array_for_object", "array_for_scalar"):
        created = await anon.post("/_sandbox/orders", json={"marketplace": "US", "items": {"MUG-1": 1}, "malformed": kind})
        assert created.status_code == 201, kind
        ids[kind] = created.json()["orderId"]
    await trio.sleep(40 * 60)
    orders = {o["orderId"]: o for o in (await client.get(SEARCH, params={
        "lastUpdatedAfter": SINCE, "includedData": "FULFILLMENT,PROCEEDS,BUYER,RECIPIENT"})).json()["orders"]}
    assert orders[ids["wrong_type"]]["programs"] == 5
    odd = orders[ids["string_for_object"]]
    assert odd["recipient"] == "n/a" and odd["fulfillment"]["shipByWindow"] == "soon"
    assert odd["buyer"]["buyerName"]  # buyer data is still there to leak, or not
    assert orders[ids["array_for_object"]]["proceeds"] == ["x"]
    wrapped = orders[ids["array_for_scalar"]]
    assert isinstance(wrapped["fulfillment"]["fulfillmentStatus"], list)
    assert wrapped["orderItems"][0]["quantityOrdered"] == [1]


async def test_channel_edit_and_catalog_view(anon):
    edited = await anon.post("/_sandbox/catalog/edit", json={"sellerId": NA, "sku": "MUG-1", "marketplace": "US",
                                                             "price": "11.50", "quantity": 7})
    assert edited.status_code == 200
    view = (await anon.get(f"/_sandbox/catalog/{NA}")).json()
    assert view["MUG-1"]["quantity"] == 7
    assert view["MUG-1"]["marketplaces"][US]["price"] == "11.50"
    refused = await anon.post("/_sandbox/catalog/edit", json={"sellerId": NA, "sku": "NOPE", "quantity": 1})
    assert refused.status_code == 400
    assert (await anon.get("/_sandbox/catalog/A0NOBODY")).status_code == 404


async def test_injected_500s_and_503s(anon, client, contract):
    await anon.post("/_sandbox/faults", json={"errorShare": {"500": 1.0}})
    failed = await client.get(SEARCH, params={"createdAfter": SINCE})
    assert failed.status_code == 500 and failed.json()["errors"][0]["code"] == "InternalFailure"
    contract(failed, "orders_2026-01-01.json", "searchOrders")
    await anon.post("/_sandbox/faults", json={"errorShare": {"503": 1.0}, "operations": ["getOrder"]})
    assert (await client.get(SEARCH, params={"createdAfter": SINCE})).status_code == 200
    assert (await client.get(f"{SEARCH}/111-0000000-0000000")).status_code == 503
    reset = await anon.delete("/_sandbox/faults")
    assert reset.json()["errorShare"] == {} and reset.json()["operations"] is None
    assert (await client.get(f"{SEARCH}/111-0000000-0000000")).status_code == 404


async def test_error_share_is_a_share(anon, client):
    await anon.post("/_sandbox/faults", json={"errorShare": {"500": 0.5}})
    statuses = [(await client.get(f"{SEARCH}/111-0000000-0000000")).status_code for _ in range(30)]
    assert 5 <= statuses.count(500) <= 25 and statuses.count(500) + statuses.count(404) == 30


async def test_latency_fault(anon, client, autojump_clock):
    await anon.post("/_sandbox/faults", json={"latency": 7.5})
    before = trio.current_time()
    assert (await client.get(PARTICIPATIONS)).status_code == 200
    assert trio.current_time() - before >= 7.5


async def test_fault_settings_are_checked(anon, world):
    assert (await anon.post("/_sandbox/faults", json={"errorShare": {"418": 0.5}})).status_code == 400
    assert (await anon.post("/_sandbox/faults", json={"errorShare": {"500": 0.8, "503": 0.5}})).status_code == 400
    assert (await anon.post("/_sandbox/faults", json={"explode": True})).status_code == 400
    flags = await anon.post("/_sandbox/faults", json={"stuckFeeds": True, "fatalFeeds": ["JSON_LISTINGS_FEED"]})
    assert flags.json()["stuckFeeds"] is True and flags.json()["fatalFeeds"] == ["JSON_LISTINGS_FEED"]
    assert world.faults.stuck_feeds is True and world.faults.fatal_feeds == {"JSON_LISTINGS_FEED"}


async def test_call_log_and_filters(anon, client):
    await client.get(PARTICIPATIONS)
    await client.get(f"{SEARCH}/111-0000000-0000000")
    calls = (await anon.get("/_sandbox/calls", params={"sellerId": NA})).json()["calls"]
    assert [(c["operation"], c["status"]) for c in calls] == [
        ("lwaToken", 200), ("getMarketplaceParticipations", 200), ("getOrder", 404)]
    only = (await anon.get("/_sandbox/calls", params={"operation": "getOrder"})).json()["calls"]
    assert len(only) == 1 and only[0]["path"] == f"{SEARCH}/111-0000000-0000000"
    assert only[0]["at"] == isoformat(START)


async def test_submissions_list_the_feeds(anon, client):
    document = await client.post("/feeds/2021-06-30/documents", json={"contentType": "application/json; charset=UTF-8"})
    assert document.status_code == 201
    feed = await client.post("/feeds/2021-06-30/feeds", json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [US], "inputFeedDocumentId": document.json()["feedDocumentId"]})
    assert feed.status_code == 202, feed.text
    feeds = (await anon.get("/_sandbox/submissions")).json()["feeds"]
    assert [(f["feedId"], f["sellerId"]) for f in feeds] == [(feed.json()["feedId"], NA)]


async def test_credentials_endpoint(anon):
    body = (await anon.get("/_sandbox/credentials")).json()
    assert body["applications"][0]["clientId"].startswith("amzn1.application-oa2-client.")
    assert {a["sellerId"]: a["piiAccess"] for a in body["accounts"]}[NA] is True


async def test_unknown_paths_answer_an_error_list(anon):
    response = await anon.get("/orders/2026-01-01/nothing-here")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "NotFound"
