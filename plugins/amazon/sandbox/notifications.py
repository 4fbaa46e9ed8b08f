"""Notifications API v1 and the messages Amazon publishes to the seller's SQS queue.

Destinations belong to the application and are managed with a *grantless* token (LWA
``client_credentials`` with the ``sellingpartnerapi::notifications`` scope); a
subscription belongs to a seller and is made with that seller's token, as the model
says. Once a seller subscribes to a type, what it announces becomes an envelope shaped
by the official schema in shared/spapi/schemas/ that ``deliver`` sends to the
destination's queue with SQS's ``SendMessage``:

* ORDER_CHANGE: every status event of an order, when the change is visible through the
  Orders API (after the order's lag), so the daemon's fetch finds what was announced;
* FBA_INVENTORY_AVAILABILITY_CHANGES: an FBA SKU whose quantities differ from what was
  last announced (drift, an MCF reservation, a shipment, a release); changes between
  two deliveries are announced once, with the latest figures, as Amazon aggregates them;
* FULFILLMENT_ORDER_STATUS: an MCF order whose status moved since it was last announced;
* FEED_PROCESSING_FINISHED / REPORT_PROCESSING_FINISHED: a feed or report that ended
  (DONE, FATAL or CANCELLED).

The last four are found by comparing the world with what was announced, not by hooks in
the feeds, reports, MCF and FBA halves, so those stay unaware of notifications; a change
that happened before the subscription is never announced.

Faults (``world.notifications.faults``): ``duplicate`` sends every message twice (SQS is
at-least-once), ``drop`` loses that share of messages (polling must catch them), ``reverse``
sends each batch newest first.
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marketsync.core.clock import isoformat

from .gateway import Call, error_response, json_response, sp_api, world_of

if TYPE_CHECKING:
    from .scenario import SimOrder
    from .world import World

SCOPE = "sellingpartnerapi::notifications"
TYPES = ("ORDER_CHANGE", "FBA_INVENTORY_AVAILABILITY_CHANGES", "FULFILLMENT_ORDER_STATUS",
         "FEED_PROCESSING_FINISHED", "REPORT_PROCESSING_FINISHED", "ANY_OFFER_CHANGED",
         "LISTINGS_ITEM_MFN_QUANTITY_CHANGE")
#: the end states of a feed or report (the schemas' processingStatus enum)
FINISHED = ("DONE", "FATAL", "CANCELLED")
V0_STATUS = {"PENDING_AVAILABILITY": "PendingAvailability", "PENDING": "Pending",
             "UNSHIPPED": "Unshipped", "PARTIALLY_SHIPPED": "PartiallyShipped",
             "SHIPPED": "Shipped", "CANCELLED": "Canceled", "UNFULFILLABLE": "Unfulfillable"}


@dataclass
class Faults:
    duplicate: bool = False
    drop: float = 0.0
    reverse: bool = False


@dataclass
class Notifications:
    world: "World"
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (seller id, notification type) → subscription
    subscriptions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    published: set[tuple[str, str]] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)  #: every message, as sent
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.world.scenario.seed}:notifications")

    #: what was last announced per (seller, type, subject): a stock snapshot or a status
    announced: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def _target(self, seller_id: str, kind: str) -> tuple[str, dict[str, Any]] | None:
        """(queue ARN, subscription) of a seller's subscription to ``kind``, if any."""
        subscription = self.subscriptions.get((seller_id, kind))
        if subscription is None:
            return None
        destination = self.destinations.get(subscription["destinationId"])
        return None if destination is None else (destination["arn"], subscription)

    def due(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """(queue ARN, envelope) of everything subscribed that happened by ``now`` and
        was not announced yet, oldest first."""
        out = self._order_changes(now)
        catalog = self.world.catalog
        for seller in sorted(self.world.accounts):
            out += self._fba_changes(catalog, seller, now)
            out += self._mcf_changes(catalog, seller, now)
            out += self._finished(seller, "FEED_PROCESSING_FINISHED", catalog.feeds.feeds.values(),
                                  now)
            out += self._finished(seller, "REPORT_PROCESSING_FINISHED",
                                  catalog.reports.reports.values(), now)
        out.sort(key=lambda item: item[1].get("EventTime") or item[1].get("eventTime"))
        return out

    def _fba_changes(self, catalog: Any, seller: str, now: datetime
                     ) -> list[tuple[str, dict[str, Any]]]:
        target = self._target(seller, "FBA_INVENTORY_AVAILABILITY_CHANGES")
        if target is None:
            return []
        arn, subscription = target
        out = []
        for offer in catalog.offers(seller):
            stock = offer.fba
            if (not offer.is_fba or stock is None or stock.updated is None
                    or not subscription["since"] <= stock.updated <= now):
                continue
            snapshot = (stock.fulfillable, stock.reserved, stock.inbound_working,
                        stock.inbound_shipped, stock.inbound_receiving, stock.unfulfillable,
                        stock.researching)
            key = (seller, "FBA_INVENTORY_AVAILABILITY_CHANGES", offer.sku)
            if self.announced.get(key) == snapshot:
                continue
            self.announced[key] = snapshot
            out.append((arn, fba_inventory_change(self.world, offer, subscription, now)))
        return out

    def _mcf_changes(self, catalog: Any, seller: str, now: datetime
                     ) -> list[tuple[str, dict[str, Any]]]:
        target = self._target(seller, "FULFILLMENT_ORDER_STATUS")
        if target is None:
            return []
        arn, subscription = target
        out = []
        for (owner, order_id), order in sorted(catalog.fulfillment.orders.items()):
            if owner != seller or not subscription["since"] <= order.status_updated <= now:
                continue
            key = (seller, "FULFILLMENT_ORDER_STATUS", order_id)
            if self.announced.get(key) == order.status:
                continue
            self.announced[key] = order.status
            out.append((arn, fulfillment_order_status(self.world, order, subscription, now)))
        return out

    def _finished(self, seller: str, kind: str, items: Any, now: datetime
                  ) -> list[tuple[str, dict[str, Any]]]:
        """Feeds or reports of ``seller`` that ended since the subscription."""
        target = self._target(seller, kind)
        if target is None:
            return []
        arn, subscription = target
        out = []
        for item in items:
            if item.seller_id != seller or item.status not in FINISHED:
                continue
            at = item.ended or item.created  # a cancelled feed has no end time
            key = (seller, kind, getattr(item, "feed_id", None) or item.report_id)
            if key in self.announced or not subscription["since"] <= at <= now:
                continue
            self.announced[key] = item.status
            out.append((arn, processing_finished(self.world, kind, item, at, subscription,
                                                 now)))
        return out

    def _order_changes(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for order in self.world.orders.values():
            subscription = self.subscriptions.get((order.seller_id, "ORDER_CHANGE"))
            if subscription is None:
                continue
            destination = self.destinations.get(subscription["destinationId"])
            if destination is None:
                continue
            for at, status in order.events:
                key = (order.order_id, f"{isoformat(at)}:{status}")
                if at + order.lag > now or key in self.published or at < subscription["since"]:
                    continue
                self.published.add(key)
                out.append((destination["arn"], order_change(self.world, order, status, at,
                                                             subscription)))
        return out

    def plan(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """``due`` with the faults applied: what actually reaches the queues."""
        messages = []
        for arn, envelope in self.due(now):
            if self.faults.drop and self._rng.random() < self.faults.drop:
                continue
            messages.append((arn, envelope))
            if self.faults.duplicate:
                messages.append((arn, envelope))
        if self.faults.reverse:
            messages.reverse()
        return messages


def order_change(world: "World", order: "SimOrder", status: str, at: datetime,
                 subscription: dict[str, Any]) -> dict[str, Any]:
    """An ORDER_CHANGE envelope (OrderLevel, OrderStatusChange) for one status event."""
    items = [{"OrderItemId": item.order_item_id, "SellerSKU": item.sku,
              "SupplySourceId": None, "Quantity": item.quantity,  # OrderItemStatus: only
              # when items differ, and then only Unshipped|Shipped (the schema's enum)
              "QuantityShipped": order.shipped_quantity(item.order_item_id, at)}
             for item in order.items]
    application = next(iter(world.applications.values()))
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": isoformat(at),
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": order.seller_id,
            "AmazonOrderId": order.order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": isoformat(at),
                                   "ChangeReason": "Order status changed"},
            "Summary": {
                "MarketplaceId": order.marketplace_id,
                "OrderStatus": V0_STATUS.get(status, status),
                "PurchaseDate": isoformat(order.created),
                "DestinationPostalCode": (order.address or {}).get("postalCode"),
                "FulfillmentType": "AFN" if order.fulfilled_by == "AMAZON" else "MFN",
                "OrderType": "StandardOrder",
                "OrderItems": items,
            },
        }},
        "NotificationMetadata": {
            "ApplicationId": application.application_id,
            "SubscriptionId": subscription["subscriptionId"],
            "PublishTime": isoformat(at + order.lag),
            "NotificationId": str(uuid.UUID(int=world.notifications._rng.getrandbits(128),
                                             version=4)),
        },
    }


def _metadata(world: "World", subscription: dict[str, Any], published: datetime,
              camel: bool = False) -> dict[str, Any]:
    application = next(iter(world.applications.values()))
    values = {"ApplicationId": application.application_id,
              "SubscriptionId": subscription["subscriptionId"],
              "PublishTime": isoformat(published),
              "NotificationId": str(uuid.UUID(int=world.notifications._rng.getrandbits(128),
                                               version=4))}
    return {k[0].lower() + k[1:]: v for k, v in values.items()} if camel else values


def fba_inventory_change(world: "World", offer: Any, subscription: dict[str, Any],
                         now: datetime) -> dict[str, Any]:
    """FBA_INVENTORY_AVAILABILITY_CHANGES for one SKU: FBA stock is the region's pool, so
    every marketplace of the offer shows the same figures. The schema declares no
    ``NotificationMetadata``, but Amazon sends one (and the daemon dedupes on its id)."""
    stock = offer.fba
    inventory = {
        "InboundQuantityBreakdown": {"Working": stock.inbound_working,
                                     "Shipped": stock.inbound_shipped,
                                     "Receiving": stock.inbound_receiving},
        "Fulfillable": stock.fulfillable, "Unfulfillable": stock.unfulfillable,
        "Researching": stock.researching,
        "ReservedQuantityBreakdown": {"WarehouseProcessing": 0, "WarehouseTransfer": 0,
                                      "PendingCustomerOrder": stock.reserved},
        "FutureSupplyBuyable": 0, "PendingCustomerOrderInTransit": 0,
    }
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "FBA_INVENTORY_AVAILABILITY_CHANGES",
        "PayloadVersion": "1.0",
        "EventTime": isoformat(stock.updated),
        "Payload": {
            "SellerId": offer.seller_id, "FNSKU": offer.fnsku or "", "ASIN": offer.asin,
            "SKU": offer.sku,
            "FulfillmentInventoryByMarketplace": [
                {"MarketplaceId": marketplace_id, "ItemName": offer.title,
                 "FulfillmentInventory": inventory}
                for marketplace_id in sorted(offer.marketplaces)],
        },
        "NotificationMetadata": _metadata(world, subscription, now),
    }


def fulfillment_order_status(world: "World", order: Any, subscription: dict[str, Any],
                             now: datetime) -> dict[str, Any]:
    """FULFILLMENT_ORDER_STATUS for an MCF order's current status. The schema requires a
    ``FulfillmentShipment`` and a ``FulfillmentReturnItem`` on every message, so both are
    sent: the shipment as planned (its packages only once shipped), no units returned."""
    shipped = order.status == "Complete"
    package = {"PackageNumber": order.package_number, "CarrierCode": order.carrier,
               "TrackingNumber": order.tracking_number}
    items = order.request.get("items") or [{}]
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "FULFILLMENT_ORDER_STATUS",
        "PayloadVersion": "1.0",
        "EventTime": isoformat(order.status_updated),
        "Payload": {"FulfillmentOrderStatusNotification": {
            "SellerId": order.seller_id,
            "EventType": "Shipment" if shipped else "Order",
            "StatusUpdatedDateTime": isoformat(order.status_updated),
            "SellerFulfillmentOrderId": order.order_id,
            "FulfillmentOrderStatus": order.status,
            "FulfillmentShipment": {
                "FulfillmentShipmentStatus": "SHIPPED" if shipped else "PENDING",
                "AmazonShipmentId": order.shipment_id,
                "EstimatedArrivalDateTime": isoformat(order.arrival),
                "info": package if shipped else {},
                "FulfillmentShipmentPackages": [package] if shipped else [],
            },
            "FulfillmentReturnItem": {"ReceivedDateTime": isoformat(order.status_updated),
                                      "ReturnedQuantity": 0,
                                      "SellerSKU": str(items[0].get("sellerSku", ""))},
        }},
        "NotificationMetadata": _metadata(world, subscription, now),
    }


def processing_finished(world: "World", kind: str, item: Any, at: datetime,
                        subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
    """FEED_PROCESSING_FINISHED or REPORT_PROCESSING_FINISHED: camelCase, payload 2020-09-04."""
    if kind == "FEED_PROCESSING_FINISHED":
        inner_key = "feedProcessingFinishedNotification"
        inner = {"feedId": item.feed_id, "feedType": item.feed_type}
        if item.result_document_id:
            inner["resultFeedDocumentId"] = item.result_document_id
    else:
        inner_key = "reportProcessingFinishedNotification"
        inner = {"reportId": item.report_id, "reportType": item.report_type}
        if item.document_id:
            inner["reportDocumentId"] = item.document_id
    return {
        "notificationVersion": "2020-09-04",
        "notificationType": kind,
        "payloadVersion": "2020-09-04",
        "eventTime": isoformat(at),
        "payload": {inner_key: {"sellerId": item.seller_id, "accountId": item.seller_id,
                                **inner, "processingStatus": item.status}},
        "notificationMetadata": _metadata(world, subscription, now, camel=True),
    }


def queue_url(endpoint: str, arn: str) -> str:
    """arn:aws:sqs:REGION:ACCOUNT:NAME → ENDPOINT/ACCOUNT/NAME (AWS's and moto's shape)."""
    parts = arn.split(":")
    return f"{endpoint.rstrip('/')}/{parts[4]}/{parts[5]}"


async def deliver(world: "World", http: httpx.AsyncClient, endpoint: str) -> int:
    """Send what is due now to the SQS-compatible server at ``endpoint``; returns how many.

    Signed as Amazon's notification service would sign (with throw-away credentials: the
    loopback server checks the form, not the key), by botocore, which the simulator only
    needs for this (the ``notifications`` extra)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    world.advance()
    sent = 0
    url = endpoint.rstrip("/") + "/"
    for arn, envelope in world.notifications.plan(world.now()):
        payload = json.dumps({"QueueUrl": queue_url(endpoint, arn),
                              "MessageBody": json.dumps(envelope)})
        request = AWSRequest(method="POST", url=url, data=payload, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"})
        SigV4Auth(Credentials("simulated-amazon", "simulated"), "sqs",
                  arn.split(":")[3]).add_auth(request)
        response = await http.post(url, content=payload, headers=dict(request.headers.items()))
        response.raise_for_status()
        world.notifications.sent.append(envelope)
        sent += 1
    return sent


async def deliver_forever(world: "World", http: httpx.AsyncClient, endpoint: str,
                          every: float = 1.0) -> None:
    while True:
        await deliver(world, http, endpoint)
        await trio.sleep(every)


# -- the API -------------------------------------------------------------------------------------


def grantless(operation: str):
    """Decorator for a grantless operation: ``handler(request, client_id)``; like the
    gateway it advances the world, answers 403 without a notifications-scope token, adds
    the request id and logs the call (no seller: the application's own bucket)."""
    def decorate(handler):
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            world = world_of(request)
            world.advance()
            client = _grantless(request)
            response = _denied() if client is None else await handler(request, client)
            response.headers["x-amzn-RequestId"] = world.next_request_id()
            world.log_call(world.now(), operation, response.status_code, None, request.url.path)
            return response
        return endpoint
    return decorate


def _grantless(request: Request) -> str | None:
    """The application a grantless notifications token speaks for, or None (→ 403)."""
    world = world_of(request)
    grant = world.grants.get(request.headers.get("x-amz-access-token", ""))
    if (grant is None or grant.scope != SCOPE or grant.revoked or grant.expires_at is None
            or grant.expires_at <= world.now()):
        return None
    return grant.client_id


def _denied() -> Response:
    return error_response(403, "Unauthorized", "Access to requested resource is denied.")


def _destination_view(destination_id: str, destination: dict[str, Any]) -> dict[str, Any]:
    return {"name": destination["name"], "destinationId": destination_id,
            "resource": {"sqs": {"arn": destination["arn"]}}}


@grantless("getDestinations")
async def get_destinations(request: Request, client: str) -> Response:
    state = world_of(request).notifications
    return json_response({"payload": [_destination_view(i, d) for i, d in state.destinations.items()
                                      if d["client_id"] == client]})


@grantless("createDestination")
async def create_destination(request: Request, client: str) -> Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    arn = (((body or {}).get("resourceSpecification") or {}).get("sqs") or {}).get("arn") \
        if isinstance(body, dict) else None
    if not isinstance(body, dict) or not body.get("name") or not isinstance(arn, str):
        return error_response(400, "InvalidInput", "name and resourceSpecification.sqs.arn are required")
    if not (arn.startswith("arn:aws:sqs:") and len(arn.split(":")) == 6):
        return error_response(400, "InvalidInput", f"{arn!r} is not an SQS queue ARN")
    state = world_of(request).notifications
    for existing in state.destinations.values():
        if existing["arn"] == arn and existing["client_id"] == client:
            return error_response(409, "Conflict", "A destination with this resource already exists")
    destination_id = str(uuid.uuid4())
    state.destinations[destination_id] = {"name": body["name"], "arn": arn, "client_id": client}
    return json_response({"payload": _destination_view(destination_id, state.destinations[destination_id])})


@grantless("deleteDestination")
async def delete_destination(request: Request, client: str) -> Response:
    state = world_of(request).notifications
    found = state.destinations.get(request.path_params["destinationId"])
    if found is None or found["client_id"] != client:
        return error_response(404, "NotFound", "The destination does not exist")
    del state.destinations[request.path_params["destinationId"]]
    return json_response({})


def _type(request: Request) -> str | None:
    kind = request.path_params["notificationType"]
    return kind if kind in TYPES else None


@sp_api("createSubscription")
async def create_subscription(request: Request, call: Call) -> Response:
    kind = _type(request)
    if kind is None:
        return error_response(400, "InvalidInput", f"{request.path_params['notificationType']!r} is not a notification type")
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not body.get("destinationId") or not body.get("payloadVersion"):
        return error_response(400, "InvalidInput", "destinationId and payloadVersion are required")
    state = call.world.notifications
    if body["destinationId"] not in state.destinations:
        return error_response(400, "InvalidInput", "The destination does not exist")
    if (call.account.seller_id, kind) in state.subscriptions:
        return error_response(409, "Conflict", f"A subscription for {kind} already exists")
    subscription = {"subscriptionId": str(uuid.uuid4()), "payloadVersion": body["payloadVersion"],
                    "destinationId": body["destinationId"], "since": call.now}
    state.subscriptions[(call.account.seller_id, kind)] = subscription
    return json_response({"payload": _subscription_view(subscription)})


def _subscription_view(subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: subscription[k] for k in ("subscriptionId", "payloadVersion", "destinationId")}


@sp_api("getSubscription")
async def get_subscription(request: Request, call: Call) -> Response:
    kind = _type(request)
    found = call.world.notifications.subscriptions.get((call.account.seller_id, kind or ""))
    if found is None:
        return error_response(404, "NotFound", "The subscription does not exist")
    return json_response({"payload": _subscription_view(found)})


@grantless("deleteSubscriptionById")
async def delete_subscription(request: Request, client: str) -> Response:
    state = world_of(request).notifications
    wanted = request.path_params["subscriptionId"]
    for key, subscription in list(state.subscriptions.items()):
        if key[1] == request.path_params["notificationType"] and subscription["subscriptionId"] == wanted:
            del state.subscriptions[key]
            return json_response({})
    return error_response(404, "NotFound", "The subscription does not exist")


def routes() -> list[Route]:
    base = "/notifications/v1"
    return [
        Route(f"{base}/destinations", get_destinations, methods=["GET"]),
        Route(f"{base}/destinations", create_destination, methods=["POST"]),
        Route(f"{base}/destinations/{{destinationId}}", delete_destination, methods=["DELETE"]),
        Route(f"{base}/subscriptions/{{notificationType}}", create_subscription, methods=["POST"]),
        Route(f"{base}/subscriptions/{{notificationType}}", get_subscription, methods=["GET"]),
        Route(f"{base}/subscriptions/{{notificationType}}/{{subscriptionId}}", delete_subscription,
              methods=["DELETE"]),
    ]
