"""confirm_shipment: Orders v0 ``confirmShipment``, exactly once per local shipment.

Idempotency comes from the package reference: ``packageReferenceId`` is derived from the
shipment's stable key, so a retry after a timeout (or after a restart) names the same
package. Amazon then edits that package instead of adding a second one, or answers that
it was already confirmed, which is a success.
"""

from __future__ import annotations

import hashlib

from marketsync.core import clock
from marketsync.core.errors import RecordRejected
from marketsync.core.types import Integration, Shipment, ShipmentConfirmation
from marketsync.plugins.amazon import marketplaces
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi

PATH = "/orders/v0/orders/{order_id}/shipmentConfirmation"
ORDER_PATH = "/orders/2026-01-01/orders/{order_id}"
#: Amazon's carrier codes we pass through as they are; anything else is "Other" + name.
#: (The full list is Amazon's CarrierCode table; these are the common ones.)
CARRIER_CODES = frozenset({
    "UPS", "USPS", "FedEx", "DHL", "DHL eCommerce", "DPD", "GLS", "Hermes", "Royal Mail",
    "Deutsche Post", "La Poste", "Chronopost", "Colissimo", "PostNL", "Poste Italiane",
    "Correos", "SEUR", "Canada Post", "Australia Post", "Japan Post", "Yamato Transport",
    "Sagawa Express", "Amazon Shipping", "Parcelforce", "Evri", "InPost", "PostNord",
    "Bpost", "An Post", "Aramex", "Blue Dart", "Delhivery", "Singapore Post",
})


def package_reference(key: str) -> str:
    """A positive numeric string that is the same for the same shipment key, always."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return str(int.from_bytes(digest[:6], "big") % 999_999_999 + 1)


def confirmation_body(shipment: Shipment, lines: list[tuple[str, int]]) -> dict:
    try:
        marketplace_id = marketplaces.MARKETPLACES[shipment.marketplace].id
    except KeyError:
        raise RecordRejected(f"shipment {shipment.key}: {shipment.marketplace!r} is not an "
                             f"Amazon marketplace", record_id=shipment.key) from None
    carrier = shipment.carrier.strip()
    known = {c.lower(): c for c in CARRIER_CODES}.get(carrier.lower())
    detail: dict = {
        "packageReferenceId": package_reference(shipment.key),
        "carrierCode": known or "Other",
        "trackingNumber": shipment.tracking_number,
        "shipDate": clock.isoformat(shipment.shipped_at),
        "orderItems": [{"orderItemId": item_id, "quantity": quantity}
                       for item_id, quantity in lines],
    }
    if known is None:
        detail["carrierName"] = carrier
    if shipment.ship_method:
        detail["shippingMethod"] = shipment.ship_method
    return {"marketplaceId": marketplace_id, "packageDetail": detail}


async def confirm_shipment(integration: Integration, shipment: Shipment) -> ShipmentConfirmation:
    api = SpApi(integration)
    lines = [(line.channel_item_id, line.quantity) for line in shipment.lines]
    if not lines:  # no lines given: the whole order, i.e. whatever is still unshipped
        lines, ours = await unshipped_lines(api, shipment)
        if not lines:
            if ours:  # our package is already there: this is a retry
                return ShipmentConfirmation(key=shipment.key, confirmed=True,
                                            already_confirmed=True)
            raise RecordRejected(f"order {shipment.channel_order_id} has nothing left to "
                                 f"ship", record_id=shipment.key)
    body = confirmation_body(shipment, lines)
    path = PATH.format(order_id=shipment.channel_order_id)
    try:
        await api.call("POST", path, "confirmShipment", json=body, expect=(204, 200))
    except AmazonRequestError as exc:
        if exc.status == 400 and "already" in exc.detail.lower():
            return ShipmentConfirmation(key=shipment.key, confirmed=True, already_confirmed=True,
                                        message=exc.detail)
        if exc.status in (400, 404, 413):
            raise RecordRejected(f"Amazon refused shipment {shipment.key} of order "
                                 f"{shipment.channel_order_id}: {exc.detail or exc.code}",
                                 record_id=shipment.key) from None
        raise
    return ShipmentConfirmation(key=shipment.key, confirmed=True)


async def unshipped_lines(api: SpApi, shipment: Shipment) -> tuple[list[tuple[str, int]], bool]:
    """The order's unshipped quantities (v2026 ``getOrder``), and whether our package
    reference is already among its packages."""
    try:
        body = await api.get_json(ORDER_PATH.format(order_id=shipment.channel_order_id),
                                  "getOrder", params={"includedData": "FULFILLMENT,PACKAGES"})
    except AmazonRequestError as exc:
        if exc.status == 404:
            raise RecordRejected(f"order {shipment.channel_order_id} not found on Amazon",
                                 record_id=shipment.key) from None
        raise
    order = body.get("order") or {}
    lines = []
    for item in order.get("orderItems") or ():
        done = (item.get("fulfillment") or {}).get("quantityFulfilled") or 0
        left = int(item.get("quantityOrdered") or 0) - int(done)
        if left > 0 and item.get("orderItemId"):
            lines.append((item["orderItemId"], left))
    reference = package_reference(shipment.key)
    ours = any(p.get("packageReferenceId") == reference for p in order.get("packages") or ())
    return lines, ours
