"""Fulfillment Outbound 2020-07-01 (Multi-Channel Fulfillment): orders Amazon ships for us.

The daemon creates an MCF order for a sale made elsewhere and later needs the carrier and
tracking number to report that sale as shipped. Amazon only knows those hours later, so
orders move Received → Planning → Processing → Complete as simulated time passes and the
package (carrier, tracking) appears only at Complete. Cancelling is possible only before
picking starts (Received, Planning), as the model says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketsync.core import clock

from .feeds import BadInput, invalid, json_body, not_found, parse_time
from .gateway import Call, json_response, sp_api

if TYPE_CHECKING:
    from .catalog import Catalog, FbaStock

BASE = "/fba/outbound/2020-07-01"
SPEEDS = ("Standard", "Expedited", "Priority", "ScheduledDelivery")
ACTIONS = ("Ship", "Hold")
POLICIES = ("FillOrKill", "FillAll", "FillAllAvailable")
CANCELLABLE = ("Received", "Planning")
# offsets from receipt at which an order (action Ship) reaches each status
STEPS = (("Planning", timedelta(minutes=30)), ("Processing", timedelta(hours=2)),
         ("Complete", timedelta(hours=6)))
TRANSIT = timedelta(days=2)
HOLD_EXPIRY = timedelta(days=14)
CARRIERS = {"US": "UPS", "CA": "CANADA_POST", "MX": "DHL", "GB": "AMZN_UK", "DE": "DHL",
            "FR": "COLISSIMO", "IT": "BRT", "ES": "CORREOS", "NL": "POSTNL", "JP": "YAMATO"}
FULFILLMENT_CENTERS = {"NA": "PHX6", "EU": "LEJ1", "FE": "NRT1"}


@dataclass
class McfOrder:
    seller_id: str
    order_id: str
    marketplace_id: str
    request: dict[str, Any]
    received: datetime
    status: str
    status_updated: datetime
    fulfillment_center: str
    shipment_id: str
    package_number: int
    tracking_number: str
    carrier: str
    shipped: datetime | None = None
    held: bool = False
    reserved: list[tuple[str, int]] = field(default_factory=list)

    def set_status(self, status: str, at: datetime) -> None:
        self.status, self.status_updated = status, at

    @property
    def arrival(self) -> datetime:
        return (self.shipped or self.received + STEPS[-1][1]) + TRANSIT


class FulfillmentOrders:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.orders: dict[tuple[str, str], McfOrder] = {}
        self.page_tokens: dict[str, tuple[str, list[str]]] = {}
        self._package_numbers = 100_000_000

    def advance(self, now: datetime) -> None:
        for order in self.orders.values():
            if order.status in ("Cancelled", "Complete", "Invalid", "Unfulfillable"):
                continue
            if order.held:
                if now >= order.received + HOLD_EXPIRY:
                    self.release(order)
                    order.set_status("Cancelled", order.received + HOLD_EXPIRY)
                continue
            for status, offset in STEPS:
                at = order.received + offset
                if now >= at and _rank(order.status) < _rank(status):
                    order.set_status(status, at)
                    if status == "Complete":
                        self._ship(order, at)

    def _ship(self, order: McfOrder, at: datetime) -> None:
        order.shipped = at
        for sku, quantity in order.reserved:
            offer = self.catalog.get(order.seller_id, sku)
            if offer is not None and offer.fba is not None:
                offer.fba.reserved = max(0, offer.fba.reserved - quantity)
                offer.fba.updated = at
        order.reserved = []

    def release(self, order: McfOrder) -> None:
        """Reserved units go back to fulfillable stock (cancel, hold expiry)."""
        for sku, quantity in order.reserved:
            offer = self.catalog.get(order.seller_id, sku)
            if offer is not None and offer.fba is not None:
                offer.fba.reserved = max(0, offer.fba.reserved - quantity)
                offer.fba.fulfillable += quantity
                offer.fba.updated = self.catalog.world.now()
        order.reserved = []

    def create(self, call: Call, body: dict[str, Any]) -> McfOrder:
        seller = call.account.seller_id
        order_id = body["sellerFulfillmentOrderId"]
        if (seller, order_id) in self.orders:
            raise BadInput(f"sellerFulfillmentOrderId {order_id!r} already exists")
        marketplace = body.get("marketplaceId") or call.account.marketplace_ids[0]
        if marketplace not in call.account.marketplace_ids:
            raise BadInput(f"marketplaceId {marketplace} is not a marketplace of this seller")
        needed: dict[str, int] = {}
        stocks: dict[str, FbaStock] = {}
        for item in body["items"]:
            offer = self.catalog.get(seller, item["sellerSku"])
            if (offer is None or not offer.is_fba or offer.fba is None
                    or marketplace not in offer.marketplaces):
                raise BadInput(f"sellerSku {item['sellerSku']!r} is not an FBA SKU of this "
                               f"seller in marketplace {marketplace}")
            needed[offer.sku] = needed.get(offer.sku, 0) + item["quantity"]
            stocks[offer.sku] = offer.fba
        enough = all(stocks[sku].fulfillable >= quantity for sku, quantity in needed.items())
        self._package_numbers += 1 + self.catalog.rng.randrange(1000)
        country = body["destinationAddress"]["countryCode"]
        carrier = CARRIERS.get(country, "AMZN")
        tracking = ("1Z" if carrier == "UPS" else "TBA") + self.catalog.new_id(digits=14)
        order = McfOrder(
            seller, order_id, marketplace, body, call.now,
            "Received" if enough else "Invalid", call.now,
            FULFILLMENT_CENTERS.get(call.account.region, "PHX6"),
            "D" + self.catalog.new_token(8).upper(), self._package_numbers, tracking, carrier,
            held=body.get("fulfillmentAction") == "Hold")
        if enough:
            for sku, quantity in needed.items():
                stock = stocks[sku]
                stock.fulfillable -= quantity
                stock.reserved += quantity
                stock.updated = call.now
                order.reserved.append((sku, quantity))
        self.orders[(seller, order_id)] = order
        return order


def _rank(status: str) -> int:
    order = ("New", "Received", "Planning", "Processing", "Complete")
    return order.index(status) if status in order else len(order)


# -- validation and rendering ------------------------------------------------------------

def validate_request(body: dict[str, Any]) -> None:
    """CreateFulfillmentOrderRequest: required fields, lengths and enums of the model."""
    def text(name: str, value: Any, maximum: int | None = None) -> None:
        if not isinstance(value, str) or not value:
            raise BadInput(f"{name} is required")
        if maximum is not None and len(value) > maximum:
            raise BadInput(f"{name} is longer than {maximum} characters")

    text("sellerFulfillmentOrderId", body.get("sellerFulfillmentOrderId"), 40)
    text("displayableOrderId", body.get("displayableOrderId"), 40)
    text("displayableOrderComment", body.get("displayableOrderComment"), 750)
    if parse_time(body.get("displayableOrderDate"), "displayableOrderDate") is None:
        raise BadInput("displayableOrderDate is required")
    if body.get("shippingSpeedCategory") not in SPEEDS:
        raise BadInput(f"shippingSpeedCategory must be one of {list(SPEEDS)}")
    if body.get("fulfillmentAction", "Ship") not in ACTIONS:
        raise BadInput(f"fulfillmentAction must be one of {list(ACTIONS)}")
    if body.get("fulfillmentPolicy", "FillOrKill") not in POLICIES:
        raise BadInput(f"fulfillmentPolicy must be one of {list(POLICIES)}")
    address = body.get("destinationAddress")
    if not isinstance(address, dict):
        raise BadInput("destinationAddress is required")
    for key in ("name", "addressLine1", "postalCode", "countryCode"):
        text(f"destinationAddress.{key}", address.get(key))
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise BadInput("items must hold 1..100 lines")
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadInput(f"items[{index}] must be an object")
        text(f"items[{index}].sellerSku", item.get("sellerSku"), 50)
        text(f"items[{index}].sellerFulfillmentOrderItemId",
             item.get("sellerFulfillmentOrderItemId"), 50)
        if item["sellerFulfillmentOrderItemId"] in seen:
            raise BadInput(f"items[{index}].sellerFulfillmentOrderItemId is not unique")
        seen.add(item["sellerFulfillmentOrderItemId"])
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise BadInput(f"items[{index}].quantity must be a positive integer")
    if sum(item["quantity"] for item in items) > 250:
        raise BadInput("an order may hold at most 250 units")


_PASS_ORDER = ("displayableOrderId", "displayableOrderDate", "displayableOrderComment",
               "shippingSpeedCategory", "deliveryWindow", "destinationAddress", "codSettings",
               "notificationEmails", "featureConstraints")
_PASS_ITEM = ("sellerSku", "sellerFulfillmentOrderItemId", "quantity", "giftMessage",
              "displayableComment", "fulfillmentNetworkSku", "perUnitPrice", "perUnitTax",
              "perUnitDeclaredValue")


def render_order(order: McfOrder) -> dict[str, Any]:
    body: dict[str, Any] = {"sellerFulfillmentOrderId": order.order_id,
                            "marketplaceId": order.marketplace_id}
    body.update({k: order.request[k] for k in _PASS_ORDER if k in order.request})
    body.update({
        "fulfillmentAction": order.request.get("fulfillmentAction", "Ship"),
        "fulfillmentPolicy": order.request.get("fulfillmentPolicy", "FillOrKill"),
        "receivedDate": clock.isoformat(order.received),
        "fulfillmentOrderStatus": order.status,
        "statusUpdatedDate": clock.isoformat(order.status_updated),
    })
    return body


def render_result(order: McfOrder) -> dict[str, Any]:
    cancelled = order.status == "Cancelled"
    unfulfillable = order.status in ("Invalid", "Unfulfillable")
    ship_date = order.received + STEPS[-1][1]
    items = []
    for item in order.request["items"]:
        line = {k: item[k] for k in _PASS_ITEM if k in item}
        line.update(cancelledQuantity=item["quantity"] if cancelled else 0,
                    unfulfillableQuantity=item["quantity"] if unfulfillable else 0)
        if not (cancelled or unfulfillable):
            line.update(estimatedShipDate=clock.isoformat(order.shipped or ship_date),
                        estimatedArrivalDate=clock.isoformat(order.arrival))
        items.append(line)
    result: dict[str, Any] = {"fulfillmentOrder": render_order(order),
                              "fulfillmentOrderItems": items,
                              "returnItems": [], "returnAuthorizations": []}
    if order.status in ("Processing", "Complete"):
        shipped = order.shipped is not None
        shipment: dict[str, Any] = {
            "amazonShipmentId": order.shipment_id,
            "fulfillmentCenterId": order.fulfillment_center,
            "fulfillmentShipmentStatus": "SHIPPED" if shipped else "PENDING",
            "estimatedArrivalDate": clock.isoformat(order.arrival),
            "fulfillmentShipmentItem": [
                dict({"sellerSku": i["sellerSku"],
                      "sellerFulfillmentOrderItemId": i["sellerFulfillmentOrderItemId"],
                      "quantity": i["quantity"]},
                     **({"packageNumber": order.package_number} if shipped else {}))
                for i in order.request["items"]],
        }
        if shipped:
            assert order.shipped is not None
            shipment["shippingDate"] = clock.isoformat(order.shipped)
            shipment["fulfillmentShipmentPackage"] = [{
                "packageNumber": order.package_number, "carrierCode": order.carrier,
                "trackingNumber": order.tracking_number,
                "amazonFulfillmentTrackingNumber": order.tracking_number,
                "estimatedArrivalDate": clock.isoformat(order.arrival)}]
        result["fulfillmentShipments"] = [shipment]
    return result


def render_tracking(order: McfOrder, now: datetime) -> dict[str, Any]:
    assert order.shipped is not None
    address = order.request["destinationAddress"]
    where = {"city": address.get("city", "")[:150], "state": address.get("stateOrRegion", "")[:150],
             "country": address["countryCode"][:6]}
    origin = {"city": "", "state": "", "country": address["countryCode"][:6]}
    delivered = now >= order.arrival
    events = [{"eventDate": clock.isoformat(order.shipped), "eventAddress": origin,
               "eventCode": "EVENT_101", "eventDescription": "Carrier notified to pick up package."},
              {"eventDate": clock.isoformat(order.shipped + timedelta(hours=2)),
               "eventAddress": origin, "eventCode": "EVENT_102",
               "eventDescription": "Shipment picked up from seller's facility."}]
    if delivered:
        events.append({"eventDate": clock.isoformat(order.arrival), "eventAddress": where,
                       "eventCode": "EVENT_301", "eventDescription": "Delivered."})
    return {
        "packageNumber": order.package_number, "trackingNumber": order.tracking_number,
        "customerTrackingLink": f"https://www.swiship.com/track?id={order.tracking_number}",
        "carrierCode": order.carrier, "shipDate": clock.isoformat(order.shipped),
        "estimatedArrivalDate": clock.isoformat(order.arrival), "shipToAddress": where,
        "currentStatus": "DELIVERED" if delivered else "IN_TRANSIT",
        "currentStatusDescription": "Delivered." if delivered else "In transit.",
        "trackingEvents": [e for e in events if e["eventDate"] <= clock.isoformat(now)],
    }


# -- routes ------------------------------------------------------------------------------

def _own(call: Call, order_id: str) -> McfOrder | None:
    return call.world.catalog.fulfillment.orders.get((call.account.seller_id, order_id))


@sp_api("createFulfillmentOrder")
async def create_fulfillment_order(request: Request, call: Call) -> Response:
    try:
        body = await json_body(request)
        validate_request(body)
        call.world.catalog.fulfillment.create(call, body)
    except BadInput as exc:
        return invalid(str(exc))
    return json_response({})


@sp_api("getFulfillmentOrder")
async def get_fulfillment_order(request: Request, call: Call) -> Response:
    order = _own(call, request.path_params["sellerFulfillmentOrderId"])
    if order is None:
        return not_found(f"Fulfillment order {request.path_params['sellerFulfillmentOrderId']} "
                         f"was not found")
    return json_response({"payload": render_result(order)})


@sp_api("listAllFulfillmentOrders")
async def list_all_fulfillment_orders(request: Request, call: Call) -> Response:
    store = call.world.catalog.fulfillment
    seller = call.account.seller_id
    token = request.query_params.get("nextToken")
    try:
        if token is not None:
            owner, remaining = store.page_tokens.pop(token, (None, []))
            if owner != seller:
                raise BadInput("nextToken is invalid")
        else:
            since = parse_time(request.query_params.get("queryStartDate"), "queryStartDate")
            found = sorted((o for (s, _), o in store.orders.items() if s == seller
                            and (since is None or o.status_updated >= since)),
                           key=lambda o: (o.status_updated, o.order_id))
            remaining = [o.order_id for o in found]
    except BadInput as exc:
        return invalid(str(exc))
    size = call.world.catalog.timing.mcf_page_size
    page = [store.orders[(seller, i)] for i in remaining[:size]]
    payload: dict[str, Any] = {"fulfillmentOrders": [render_order(o) for o in page]}
    if len(remaining) > size:
        next_token = call.world.catalog.new_token()
        store.page_tokens[next_token] = (seller, remaining[size:])
        payload["nextToken"] = next_token
    return json_response({"payload": payload})


@sp_api("cancelFulfillmentOrder")
async def cancel_fulfillment_order(request: Request, call: Call) -> Response:
    order = _own(call, request.path_params["sellerFulfillmentOrderId"])
    if order is None:
        return not_found(f"Fulfillment order {request.path_params['sellerFulfillmentOrderId']} "
                         f"was not found")
    if order.status not in CANCELLABLE:
        return invalid(f"Fulfillment order {order.order_id} is {order.status}; only orders "
                       f"in {' or '.join(CANCELLABLE)} can be cancelled")
    call.world.catalog.fulfillment.release(order)
    order.set_status("Cancelled", call.now)
    return json_response({})


@sp_api("getPackageTrackingDetails")
async def get_package_tracking_details(request: Request, call: Call) -> Response:
    raw = request.query_params.get("packageNumber", "")
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        return invalid("packageNumber is required and must be a 32-bit integer")
    for (seller, _), order in call.world.catalog.fulfillment.orders.items():
        if (seller == call.account.seller_id and order.package_number == int(raw)
                and order.shipped is not None):
            return json_response({"payload": render_tracking(order, call.now)})
    return not_found(f"Package {raw} was not found")


def routes(catalog: Catalog) -> list[BaseRoute]:
    orders = f"{BASE}/fulfillmentOrders"
    return [
        Route(orders, create_fulfillment_order, methods=["POST"]),
        Route(orders, list_all_fulfillment_orders, methods=["GET"]),
        Route(f"{orders}/{{sellerFulfillmentOrderId}}", get_fulfillment_order, methods=["GET"]),
        Route(f"{orders}/{{sellerFulfillmentOrderId}}/cancel", cancel_fulfillment_order,
              methods=["PUT"]),
        Route(f"{BASE}/tracking", get_package_tracking_details, methods=["GET"]),
    ]
