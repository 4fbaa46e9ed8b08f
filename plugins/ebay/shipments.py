"""confirm_shipment: ``createShippingFulfillment`` with carrier and tracking, exactly once.

eBay has no idempotency key for fulfilments, so the plugin looks before it writes: the
order's fulfilments are read first, and one with the same tracking number means this
shipment is already on eBay (a retry after a timeout, a restart, a second process). A
409 (the lines are already shipped) is checked the same way: the same tracking number is
success, another one is a refusal for the seller to look at.
"""

from __future__ import annotations

from marketsync.core.errors import RecordRejected
from marketsync.core.types import Integration, Shipment, ShipmentConfirmation
from marketsync.plugins.ebay.client import EbayApi, EbayRequestError
from marketsync.plugins.ebay.orders import _iso

BASE = "/sell/fulfillment/v1/order"

#: common names → eBay's shippingCarrierCode values
CARRIERS = {"usps": "USPS", "ups": "UPS", "fedex": "FedEx", "dhl": "DHL",
            "royal mail": "RoyalMail", "royalmail": "RoyalMail", "dpd": "DPD",
            "hermes": "Hermes", "evri": "Evri", "australia post": "AustraliaPost",
            "canada post": "CanadaPost", "deutsche post": "DeutschePost", "gls": "GLS",
            "amzn_us": "Other", "amazon": "Other"}


def carrier_code(name: str) -> str:
    return CARRIERS.get(name.strip().lower(), name.strip().replace(" ", ""))


async def _existing(api: EbayApi, order_id: str, tracking: str) -> bool:
    body = await api.get_json(f"{BASE}/{order_id}/shipping_fulfillment", "getShippingFulfillments")
    return any(isinstance(f, dict) and f.get("shipmentTrackingNumber") == tracking
               for f in body.get("fulfillments") or ())


async def confirm_shipment(integration: Integration, shipment: Shipment) -> ShipmentConfirmation:
    api = EbayApi(integration)
    order_id = shipment.channel_order_id
    try:
        if await _existing(api, order_id, shipment.tracking_number):
            return ShipmentConfirmation(key=shipment.key, confirmed=True, already_confirmed=True)
        lines = [{"lineItemId": line.channel_item_id, "quantity": line.quantity}
                 for line in shipment.lines]
        if not lines:  # the whole order
            order = await api.get_json(f"{BASE}/{order_id}", "getOrder")
            lines = [{"lineItemId": line["lineItemId"], "quantity": line["quantity"]}
                     for line in order.get("lineItems") or ()
                     if line.get("lineItemFulfillmentStatus") != "FULFILLED"]
        await api.call("POST", f"{BASE}/{order_id}/shipping_fulfillment",
                       "createShippingFulfillment", expect=(201,), json={
                           "lineItems": lines,
                           "shippedDate": _iso(shipment.shipped_at),
                           "shippingCarrierCode": carrier_code(shipment.carrier),
                           "trackingNumber": shipment.tracking_number})
    except EbayRequestError as exc:
        if exc.status == 409 and await _existing(api, order_id, shipment.tracking_number):
            return ShipmentConfirmation(key=shipment.key, confirmed=True, already_confirmed=True)
        if exc.status in (400, 404, 409):
            raise RecordRejected(f"eBay refused the shipment of order {order_id}: "
                                 f"{exc.detail or exc}", record_id=order_id) from None
        raise
    return ShipmentConfirmation(key=shipment.key, confirmed=True)
