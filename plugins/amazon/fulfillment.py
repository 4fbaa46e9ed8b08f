"""Multi-Channel Fulfillment (Fulfillment Outbound 2020-07-01): tracking, and new MCF orders.

``fetch_tracking`` reads each open fulfilment order with ``getFulfillmentOrder`` (2 rps,
burst 30: cheap) and returns the carrier and tracking number of every package shipped.
2020-07-01 stays until Amazon announces a date for 2026-07-04 (REFERENCE §11.2).

``create_fulfillment_order`` asks Amazon to ship an order from FBA stock. Our order id is
the ``sellerFulfillmentOrderId``, which Amazon keeps unique per seller, so a retry can
never create a second fulfilment order: "already exists" is answered as success.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import trio

from marketsync.core import clock
from marketsync.core.errors import RecordRejected
from marketsync.core.types import (
    FulfillmentRef,
    FulfillmentRequest,
    Integration,
    PackageTracking,
    TrackingInfo,
)
from marketsync.plugins.amazon import marketplaces
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi

BASE = "/fba/outbound/2020-07-01/fulfillmentOrders"
SPEEDS = ("Standard", "Expedited", "Priority", "ScheduledDelivery")


async def fetch_tracking(integration: Integration,
                         fulfillments: Sequence[FulfillmentRef]) -> list[TrackingInfo]:
    api = SpApi(integration)
    found: dict[str, TrackingInfo] = {}

    async def one(ref: FulfillmentRef) -> None:
        path = f"{BASE}/{quote(ref.fulfillment_order_id, safe='')}"
        try:
            body = await api.get_json(path, "getFulfillmentOrder")
        except AmazonRequestError as exc:
            if exc.status in (400, 404):
                api.log.warning("fulfilment order %s unknown to Amazon (%s)",
                                ref.fulfillment_order_id, exc.code)
                return
            raise
        found[ref.fulfillment_order_id] = tracking(ref.fulfillment_order_id,
                                                   body.get("payload") or {})

    async with trio.open_nursery() as nursery:
        for ref in fulfillments:
            nursery.start_soon(one, ref)
    return [found[r.fulfillment_order_id] for r in fulfillments if r.fulfillment_order_id in found]


def tracking(order_id: str, payload: dict[str, Any]) -> TrackingInfo:
    status = (payload.get("fulfillmentOrder") or {}).get("fulfillmentOrderStatus") or "Unknown"
    packages = []
    for shipment in payload.get("fulfillmentShipments") or ():
        shipped_at = _time(shipment.get("shippingDate"))
        for package in shipment.get("fulfillmentShipmentPackage") or ():
            number = package.get("trackingNumber") or package.get("amazonFulfillmentTrackingNumber")
            if not number:
                continue
            packages.append(PackageTracking(
                carrier=str(package.get("carrierCode") or ""),
                tracking_number=str(number),
                shipped_at=shipped_at,
                status=shipment.get("fulfillmentShipmentStatus"),
            ))
    return TrackingInfo(fulfillment_order_id=order_id, status=status, packages=tuple(packages))


def create_request_body(request: FulfillmentRequest) -> dict[str, Any]:
    if request.speed not in SPEEDS:
        raise ValueError(f"MCF order {request.fulfillment_order_id}: speed {request.speed!r} "
                         f"is not one of {', '.join(SPEEDS)}")
    address = request.address
    if not (address.name and address.line1 and address.postal_code and address.country_code):
        raise RecordRejected(f"MCF order {request.fulfillment_order_id}: the address needs a "
                             f"name, a first line, a postal code and a country",
                             record_id=request.fulfillment_order_id)
    destination = {
        "name": address.name, "addressLine1": address.line1, "addressLine2": address.line2,
        "addressLine3": address.line3, "city": address.city,
        "districtOrCounty": address.district, "stateOrRegion": address.state,
        "postalCode": address.postal_code, "countryCode": address.country_code,
        "phone": address.phone,
    }
    body: dict[str, Any] = {
        "marketplaceId": marketplaces.MARKETPLACES[request.marketplace].id,
        "sellerFulfillmentOrderId": request.fulfillment_order_id,
        "displayableOrderId": request.displayable_order_id or request.fulfillment_order_id,
        "displayableOrderDate": clock.isoformat(request.ordered_at),
        "displayableOrderComment": request.comment,
        "shippingSpeedCategory": request.speed,
        "destinationAddress": {k: v for k, v in destination.items() if v},
        "items": [{"sellerSku": line.channel_sku, "sellerFulfillmentOrderItemId": line.line_id,
                   "quantity": line.quantity} for line in request.lines],
    }
    if request.notification_emails:
        body["notificationEmails"] = list(request.notification_emails)
    return body


async def create_fulfillment_order(integration: Integration,
                                   request: FulfillmentRequest) -> bool:
    """Create the MCF order; True when created now, False when it already existed.

    :raises RecordRejected: Amazon refused the order for good (unknown SKU, bad address).
    """
    body = create_request_body(request)
    api = SpApi(integration)
    try:
        await api.send_json("POST", BASE, "createFulfillmentOrder", json=body)
    except AmazonRequestError as exc:
        if exc.status == 400 and "already exists" in exc.detail.lower():
            return False
        if exc.status in (400, 404, 413):
            raise RecordRejected(f"Amazon refused MCF order {request.fulfillment_order_id}: "
                                 f"{exc.detail or exc.code}",
                                 record_id=request.fulfillment_order_id) from None
        raise
    return True


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
