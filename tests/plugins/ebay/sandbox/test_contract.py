"""Every simulated eBay answer the plugin relies on, checked against the contract record
(``plugins/ebay/sandbox/contract.py``, our compact form of eBay's OpenAPI files)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import trio

from marketsync.plugins.ebay.sandbox.contract import violations

from ..conftest import CLIENT_ID, CLIENT_SECRET, REFRESH, RU_NAME, SELLER, user_token

BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
FULFILMENT = "/sell/fulfillment/v1"
INVENTORY = "/sell/inventory/v1"


def auth(token: str, market: str = "EBAY_US") -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "x-ebay-c-marketplace-id": market}


async def test_oauth_answers_match_the_contract(sandbox):
    consent = await sandbox.get("/oauth2/authorize", params={
        "client_id": CLIENT_ID, "redirect_uri": RU_NAME, "response_type": "code",
        "scope": "https://api.ebay.com/oauth/api_scope", "state": "s-1"})
    assert consent.status_code == 302
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    assert query["state"] == ["s-1"] and query["code"][0].startswith("v^1.1#")
    granted = await sandbox.post("/identity/v1/oauth2/token", headers={"authorization": BASIC},
                                 data={"grant_type": "authorization_code",
                                       "code": query["code"][0], "redirect_uri": RU_NAME})
    assert granted.status_code == 200 and violations("UserToken", granted.json()) == []
    refreshed = await sandbox.post("/identity/v1/oauth2/token", headers={"authorization": BASIC},
                                   data={"grant_type": "refresh_token",
                                         "refresh_token": granted.json()["refresh_token"]})
    assert refreshed.status_code == 200 and violations("RefreshedToken", refreshed.json()) == []
    again = await sandbox.post("/identity/v1/oauth2/token", headers={"authorization": BASIC},
                               data={"grant_type": "authorization_code",
                                     "code": query["code"][0], "redirect_uri": RU_NAME})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert violations("OAuthError", again.json()) == []


async def test_fulfillment_answers_match_the_contract(sandbox, world, autojump_clock):
    token = await user_token(sandbox)
    await trio.sleep(3600)  # the generator places some orders; a cancellation or two
    sold = (await sandbox.post("/_sandbox/orders", json={"sku": "MUG-1", "quantity": 2})).json()
    page = await sandbox.get(f"{FULFILMENT}/order", headers=auth(token), params={
        "filter": "lastmodifieddate:[2026-10-01T00:00:00.000Z..]", "limit": "200"})
    assert page.status_code == 200
    body = page.json()
    assert violations("OrderSearchPagedCollection", body) == []
    assert body["total"] == len(body["orders"]) > 10
    shipped = await sandbox.post(f"{FULFILMENT}/order/{sold['orderId']}/shipping_fulfillment",
                                 headers=auth(token), json={
                                     "lineItems": [{"lineItemId": sold["lineItems"][0]["lineItemId"],
                                                    "quantity": 2}],
                                     "shippedDate": "2026-11-02T14:00:00.000Z",
                                     "shippingCarrierCode": "USPS", "trackingNumber": "9400100"})
    assert shipped.status_code == 201
    assert shipped.headers["location"].endswith(f"/order/{sold['orderId']}/shipping_fulfillment/9400100")
    listed = await sandbox.get(f"{FULFILMENT}/order/{sold['orderId']}/shipping_fulfillment",
                               headers=auth(token))
    assert violations("ShippingFulfillmentPagedCollection", listed.json()) == []
    order = (await sandbox.get(f"{FULFILMENT}/order/{sold['orderId']}", headers=auth(token))).json()
    assert violations("Order", order) == [] and order["orderFulfillmentStatus"] == "FULFILLED"
    twice = await sandbox.post(f"{FULFILMENT}/order/{sold['orderId']}/shipping_fulfillment",
                               headers=auth(token), json={
                                   "lineItems": [{"lineItemId": sold["lineItems"][0]["lineItemId"],
                                                  "quantity": 2}],
                                   "shippingCarrierCode": "USPS", "trackingNumber": "9400100"})
    assert twice.status_code == 409 and violations("ErrorList", twice.json()) == []


async def test_inventory_answers_match_the_contract(sandbox):
    token = await user_token(sandbox)
    items = await sandbox.get(f"{INVENTORY}/inventory_item", headers=auth(token),
                              params={"limit": "2"})
    assert violations("InventoryItems", items.json()) == []
    assert items.json()["total"] == 4 and "next" in items.json()
    offers = await sandbox.get(f"{INVENTORY}/offer", headers=auth(token), params={"sku": "MUG-1"})
    assert violations("Offers", offers.json()) == []
    offer = offers.json()["offers"][0]
    bulk = await sandbox.post(f"{INVENTORY}/bulk_update_price_quantity", headers=auth(token),
                              json={"requests": [
                                  {"sku": "MUG-1", "offers": [{"offerId": offer["offerId"],
                                                               "availableQuantity": 7}]},
                                  {"sku": "NOPE", "offers": [{"offerId": "1",
                                                              "availableQuantity": 1}]}]})
    assert bulk.status_code == 207
    assert violations("BulkPriceQuantityResponse", bulk.json()) == []
    assert [r["statusCode"] for r in bulk.json()["responses"]] == [200, 404]


async def test_rate_limits_and_errors_match_the_contract(sandbox):
    token = await user_token(sandbox)
    limits = await sandbox.get("/developer/analytics/v1_beta/rate_limit/", headers=auth(token),
                               params={"api_context": "sell"})
    assert violations("RateLimitsResponse", limits.json()) == []
    names = {r["name"] for limit in limits.json()["rateLimits"] for r in limit["resources"]}
    assert names == {"sell.fulfillment", "sell.inventory"}
    user = await sandbox.get("/commerce/identity/v1/user/", headers=auth(token))
    assert violations("UserResponse", user.json()) == [] and user.json()["userId"] == SELLER
    refused = await sandbox.get(f"{FULFILMENT}/order", headers=auth("not-a-token"))
    assert refused.status_code == 401 and violations("ErrorList", refused.json()) == []


@pytest.mark.parametrize("record,value,problem", [
    ("Order", {"orderId": 1}, "expected a string"),
    ("CancelStatus", {"cancelState": "MAYBE"}, "is not one of"),
    ("Amount", {"value": "1.00"}, "currency: missing"),
    ("Rate", {"limit": "10"}, "expected an integer"),
])
def test_the_checker_catches_what_breaks_the_contract(record, value, problem):
    assert any(problem in v for v in violations(record, value))


async def test_refresh_token_of_another_application_is_refused(sandbox, world):
    world.refresh_tokens[REFRESH[SELLER]].client_id = "someone-else"
    refused = await sandbox.post("/identity/v1/oauth2/token", headers={"authorization": BASIC},
                                 data={"grant_type": "refresh_token",
                                       "refresh_token": REFRESH[SELLER]})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
