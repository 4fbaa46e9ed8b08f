"""Notifications API v1 (grantless destinations, seller subscriptions) and the ORDER_CHANGE
messages the simulator publishes, checked against the official model and schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
import trio

from marketsync.core import clock

from .conftest import APPLICATION_ID, CLIENT_ID, CLIENT_SECRET, EU, NA, SPAPI
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


SCHEMA_FILES = {
    "ORDER_CHANGE": "OrderChangeNotification.json",
    "FBA_INVENTORY_AVAILABILITY_CHANGES": "FBAInventoryAvailabilityChangeNotification.json",
    "FULFILLMENT_ORDER_STATUS": "FulfillmentOrderStatusNotification.json",
    "FEED_PROCESSING_FINISHED": "FeedProcessingFinishedNotification.json",
    "REPORT_PROCESSING_FINISHED": "ReportProcessingFinishedNotification.json",
}
MCF_ORDER = {
    "sellerFulfillmentOrderId": "SHOP-7", "displayableOrderId": "SHOP-7",
    "displayableOrderDate": "2026-11-02T11:55:00Z", "displayableOrderComment": "Thanks",
    "shippingSpeedCategory": "Standard", "marketplaceId": "ATVPDKIKX0DER",
    "destinationAddress": {"name": "Jane Doe", "addressLine1": "1 Main St", "city": "Seattle",
                           "stateOrRegion": "WA", "postalCode": "98101", "countryCode": "US"},
    "items": [{"sellerSku": "SPORK-FBA", "sellerFulfillmentOrderItemId": "1", "quantity": 2}],
}


def schemas() -> dict[str, dict]:
    folder = SPAPI / "schemas"
    if not all((folder / name).exists() for name in SCHEMA_FILES.values()):
        pytest.skip(f"needs the official notification schemas in {folder} (absent here)")
    return {kind: json.loads((folder / name).read_text()) for kind, name in SCHEMA_FILES.items()}


async def subscribe_all(anon, login, seller=NA, types=tuple(SCHEMA_FILES)) -> None:
    app = await grantless(anon)
    made = await anon.post("/notifications/v1/destinations", headers=app, json={
        "name": "all", "resourceSpecification": {"sqs": {"arn": ARN}}})
    destination = (made.json()["payload"]["destinationId"] if made.status_code == 200 else
                   (await anon.get("/notifications/v1/destinations", headers=app)
                    ).json()["payload"][0]["destinationId"])
    for kind in types:
        version = "2020-09-04" if "PROCESSING" in kind else "1.0"
        answer = await anon.post(f"/notifications/v1/subscriptions/{kind}",
                                 headers=await login(seller),
                                 json={"payloadVersion": version, "destinationId": destination})
        assert answer.status_code == 200, answer.text


def published(world) -> list[dict]:
    world.advance()
    return [envelope for _, envelope in world.notifications.plan(clock.now())]


def of_type(envelopes: list[dict], kind: str) -> list[dict]:
    return [e for e in envelopes if (e.get("NotificationType") or e.get("notificationType")) == kind]


async def test_every_subscribed_type_is_published_per_its_official_schema(
        anon, login, world, autojump_clock):
    """FBA stock, an MCF order, a feed and a report moving on the simulated Amazon each
    yield their notification, valid against Amazon's schema, once per change."""
    schema = schemas()
    await trio.sleep(60)  # the seller subscribes a minute after the world was seeded
    await subscribe_all(anon, login)
    seller = await login(NA)
    assert of_type(published(world), "FBA_INVENTORY_AVAILABILITY_CHANGES") == []  # seeded stock

    world.catalog.channel_edit(NA, "SPORK-FBA", quantity=70)  # e.g. a stocktake at Amazon
    stock = of_type(published(world), "FBA_INVENTORY_AVAILABILITY_CHANGES")
    assert [(e["Payload"]["SKU"], e["Payload"]["SellerId"]) for e in stock] == [("SPORK-FBA", NA)]
    by_marketplace = {m["MarketplaceId"]: m["FulfillmentInventory"]["Fulfillable"]
                      for m in stock[0]["Payload"]["FulfillmentInventoryByMarketplace"]}
    assert by_marketplace == {"ATVPDKIKX0DER": 70, "A2EUQ1WTGCTBG2": 70}  # one pool: US, CA

    created = await anon.post("/fba/outbound/2020-07-01/fulfillmentOrders", headers=seller,
                              json=MCF_ORDER)
    assert created.status_code == 200, created.text
    document = await anon.post("/feeds/2021-06-30/documents", headers=seller,
                               json={"contentType": "application/json; charset=UTF-8"})
    feed = await anon.post("/feeds/2021-06-30/feeds", headers=seller, json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": ["ATVPDKIKX0DER"],
        "inputFeedDocumentId": document.json()["feedDocumentId"]})  # never uploaded: FATAL
    report = await anon.post("/reports/2021-06-30/reports", headers=seller, json={
        "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["ATVPDKIKX0DER"]})
    now = published(world)
    received = of_type(now, "FULFILLMENT_ORDER_STATUS")
    assert [e["Payload"]["FulfillmentOrderStatusNotification"]["FulfillmentOrderStatus"]
            for e in received] == ["Received"]
    reserved = of_type(now, "FBA_INVENTORY_AVAILABILITY_CHANGES")  # 2 units reserved
    assert [m["FulfillmentInventory"]["ReservedQuantityBreakdown"]["PendingCustomerOrder"]
            for m in reserved[0]["Payload"]["FulfillmentInventoryByMarketplace"]] == [2, 2]

    await trio.sleep(6 * 3600 + 60)  # the MCF order ships; the feed and report end
    later = published(world)
    shipped = of_type(later, "FULFILLMENT_ORDER_STATUS")
    status = shipped[-1]["Payload"]["FulfillmentOrderStatusNotification"]
    assert (status["FulfillmentOrderStatus"], status["EventType"]) == ("Complete", "Shipment")
    assert status["FulfillmentShipment"]["FulfillmentShipmentPackages"][0]["TrackingNumber"]
    feeds = of_type(later, "FEED_PROCESSING_FINISHED")
    assert [(f["payload"]["feedProcessingFinishedNotification"]["feedId"],
             f["payload"]["feedProcessingFinishedNotification"]["processingStatus"])
            for f in feeds] == [(feed.json()["feedId"], "FATAL")]
    reports = of_type(later, "REPORT_PROCESSING_FINISHED")
    finished = reports[0]["payload"]["reportProcessingFinishedNotification"]
    assert (finished["reportId"], finished["processingStatus"]) == (report.json()["reportId"],
                                                                    "DONE")
    assert finished["reportDocumentId"]

    everything = [*stock, *now, *later]
    for envelope in everything:
        kind = envelope.get("NotificationType") or envelope.get("notificationType")
        jsonschema.validate(envelope, schema[kind])
    ids = [(e.get("NotificationMetadata") or e["notificationMetadata"]).get("NotificationId")
           or e["notificationMetadata"]["notificationId"] for e in everything]
    assert len(set(ids)) == len(ids)
    assert of_type(published(world), "FEED_PROCESSING_FINISHED") == []  # announced once


async def test_only_subscribed_types_and_sellers_are_published(anon, login, world,
                                                               autojump_clock):
    schemas()
    await trio.sleep(60)
    await subscribe_all(anon, login, types=("ORDER_CHANGE",))
    world.catalog.channel_edit(NA, "SPORK-FBA", quantity=5)
    world.catalog.channel_edit(EU, "SPORK-FBA", quantity=5)  # EU subscribed to nothing
    kinds = {e.get("NotificationType") or e.get("notificationType") for e in published(world)}
    assert kinds <= {"ORDER_CHANGE"}
    await trio.sleep(60)
    await subscribe_all(anon, login, types=("FBA_INVENTORY_AVAILABILITY_CHANGES",))
    assert of_type(published(world), "FBA_INVENTORY_AVAILABILITY_CHANGES") == []  # before it
    world.catalog.channel_edit(NA, "SPORK-FBA", quantity=6)
    stock = of_type(published(world), "FBA_INVENTORY_AVAILABILITY_CHANGES")
    assert [e["Payload"]["SellerId"] for e in stock] == [NA]
