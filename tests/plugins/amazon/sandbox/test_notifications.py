"""Notifications API v1 (grantless destinations, seller subscriptions) and the ORDER_CHANGE
messages the simulator publishes, checked against the official model and schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
import trio

from marketsync.core import clock

from .conftest import APPLICATION_ID, CLIENT_ID, CLIENT_SECRET, NA, SPAPI
from .test_orders import PAID, place

ARN = "arn:aws:sqs:us-east-1:123456789012:marketsync-orders"
MODEL = "notifications.json"


async def grantless(anon, scope="sellingpartnerapi::notifications") -> dict[str, str]:
    response = await anon.post("/auth/o2/token", data={
        "grant_type": "client_credentials", "scope": scope,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()
    return {"x-amz-access-token": response.json()["access_token"]}


async def subscribed(anon, login) -> str:
    app = await grantless(anon)
    made = await anon.post("/notifications/v1/destinations", headers=app, json={
        "name": "orders", "resourceSpecification": {"sqs": {"arn": ARN}}})
    assert made.status_code == 200, made.text
    destination = made.json()["payload"]["destinationId"]
    subscription = await anon.post("/notifications/v1/subscriptions/ORDER_CHANGE",
                                   headers=await login(NA),
                                   json={"payloadVersion": "1.0", "destinationId": destination})
    assert subscription.status_code == 200, subscription.text
    return subscription.json()["payload"]["subscriptionId"]


async def test_destinations_need_a_grantless_token_and_match_the_model(anon, login, contract):
    seller = await login(NA)
    assert (await anon.get("/notifications/v1/destinations", headers=seller)).status_code == 403
    wrong = await anon.post("/auth/o2/token", data={
        "grant_type": "client_credentials", "scope": "sellingpartnerapi::everything",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_scope"
    app = await grantless(anon)
    made = await anon.post("/notifications/v1/destinations", headers=app, json={
        "name": "orders", "resourceSpecification": {"sqs": {"arn": ARN}}})
    contract(made, MODEL, "createDestination")
    again = await anon.post("/notifications/v1/destinations", headers=app, json={
        "name": "orders", "resourceSpecification": {"sqs": {"arn": ARN}}})
    assert again.status_code == 409
    bad = await anon.post("/notifications/v1/destinations", headers=app, json={
        "name": "x", "resourceSpecification": {"sqs": {"arn": "not-an-arn"}}})
    assert bad.status_code == 400
    listed = await anon.get("/notifications/v1/destinations", headers=app)
    contract(listed, MODEL, "getDestinations")
    assert [d["resource"]["sqs"]["arn"] for d in listed.json()["payload"]] == [ARN]


async def test_subscriptions_are_the_sellers_and_deleted_grantless(anon, login, contract):
    subscription = await subscribed(anon, login)
    seller = await login(NA)
    shown = await anon.get("/notifications/v1/subscriptions/ORDER_CHANGE", headers=seller)
    contract(shown, MODEL, "getSubscription")
    assert shown.json()["payload"]["subscriptionId"] == subscription
    path = f"/notifications/v1/subscriptions/ORDER_CHANGE/{subscription}"
    assert (await anon.delete(path, headers=seller)).status_code == 403
    gone = await anon.delete(path, headers=await grantless(anon))
    contract(gone, MODEL, "deleteSubscriptionById")
    missing = await anon.get("/notifications/v1/subscriptions/ORDER_CHANGE", headers=seller)
    assert missing.status_code == 404


async def test_order_changes_are_published_per_the_official_schema(anon, login, world,
                                                                   autojump_clock):
    """A subscribed seller's new order yields one ORDER_CHANGE per status, each valid
    against OrderChangeNotification.json, only once visible, never twice."""
    schema_file = SPAPI / "schemas" / "OrderChangeNotification.json"
    if not schema_file.exists():
        pytest.skip(f"needs the official schemas at {schema_file.parent} (absent here)")
    schema = json.loads(schema_file.read_text())
    await subscribed(anon, login)
    order = await place(anon)
    assert world.notifications.plan(clock.now()) == []  # not visible yet: nothing announced
    await trio.sleep(PAID)
    everything = world.notifications.plan(clock.now())
    assert {arn for arn, _ in everything} == {ARN}
    for _, envelope in everything:  # the world's own orders of this seller too
        jsonschema.validate(envelope, schema)
    published = [(arn, e) for arn, e in everything
                 if e["Payload"]["OrderChangeNotification"]["AmazonOrderId"] == order["orderId"]]
    statuses = []
    for _, envelope in published:
        change = envelope["Payload"]["OrderChangeNotification"]
        assert change["SellerId"] == NA
        assert envelope["NotificationMetadata"]["ApplicationId"] == APPLICATION_ID
        statuses.append(change["Summary"]["OrderStatus"])
    assert statuses == ["Pending", "Unshipped"]
    ids = [e["NotificationMetadata"]["NotificationId"] for _, e in everything]
    assert len(set(ids)) == len(ids)
    assert world.notifications.plan(clock.now()) == []


async def test_faults_duplicate_and_drop(anon, login, world, autojump_clock):
    await subscribed(anon, login)
    world.notifications.faults.duplicate = True
    order = await place(anon)
    await trio.sleep(PAID)

    def about(order_id, published):
        return [e for _, e in published
                if e["Payload"]["OrderChangeNotification"]["AmazonOrderId"] == order_id]

    doubled = about(order["orderId"], world.notifications.plan(clock.now()))
    assert len(doubled) == 4 and doubled[0] == doubled[1]
    world.notifications.faults.duplicate, world.notifications.faults.drop = False, 1.0
    order = await place(anon)
    await trio.sleep(PAID)
    assert world.notifications.plan(clock.now()) == []
