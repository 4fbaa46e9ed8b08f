"""Orders the channel ships for the seller (Amazon MCF): which to send, and what came back.

``orders.fulfill_mcf`` records the wish (a ``fulfillment_orders`` row with no status);
the ``fetch_tracking`` job sends each unsent one through the channel's
``create_fulfillment`` hook, then follows all open ones for tracking.

Any order can go this way, whichever channel it came from (manual, another Amazon
marketplace, eBay): the request is built from the order's stored recipient, with the
fulfilling integration's ``contact`` settings filling in (``prefill``) or replacing
(``overwrite``) the phone and the e-mail Amazon sends its shipping notices to. When the
package ships, ``shipment_for_origin`` turns its tracking into a shipment of the order,
which the ``confirm_shipment`` job of the channel the order came from confirms there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain import pii
from marketsync.core.store.models import (
    FulfillmentOrder,
    IntegrationRow,
    Listing,
    Order,
    OrderItem,
    ShipmentRow,
)
from marketsync.core.store.timing import transaction_now
from marketsync.core.types import (
    Address,
    Fulfillment,
    FulfillmentLine,
    FulfillmentRequest,
    PackageTracking,
)

SUBMITTED = "Submitted"
REJECTED = "Rejected"
#: the built-in channel of orders typed in: nothing remote to tell of a shipment
MANUAL_CHANNEL = "manual"


@dataclass(frozen=True, slots=True)
class Contact:
    """The integration's ``contact`` settings, as the MCF request uses them."""

    phone: str | None = None
    email: str | None = None
    mode: str = "prefill"  #: prefill: only where the buyer gave none; overwrite: always

    def choose(self, buyers: str | None, ours: str | None) -> str | None:
        if ours and (self.mode == "overwrite" or not buyers):
            return ours
        return buyers


def unsent(session: Session, integration_id: int, cipher: pii.PiiCipher | None,
           contact: Contact | None = None) -> tuple[list[FulfillmentRequest], dict[str, str]]:
    """Requests for the integration's fulfilment orders not yet sent, and the ones that
    cannot be sent (no FBA listing, no address) with the reason."""
    contact = contact or Contact()
    marketplace = session.execute(select(IntegrationRow.marketplace)
                                  .where(IntegrationRow.id == integration_id)).scalar_one()
    rows = session.execute(
        select(FulfillmentOrder, Order).join(Order, Order.id == FulfillmentOrder.order_id)
        .where(FulfillmentOrder.integration_id == integration_id,
               FulfillmentOrder.status.is_(None), FulfillmentOrder.open.is_(True))
        .order_by(FulfillmentOrder.id)).all()
    requests, problems = [], {}
    for row, order in rows:
        reference = row.seller_fulfillment_order_id
        address = _address(order, cipher)
        if address is None:
            problems[reference] = ("the order has no shipping address we can read "
                                   "(no buyer data, or no pii.key)")
            continue
        lines, missing = [], []
        for item in session.execute(select(OrderItem).where(OrderItem.order_id == order.id)
                                    .order_by(OrderItem.id)).scalars():
            sku = session.execute(select(Listing.channel_sku).where(
                Listing.integration_id == integration_id, Listing.product_id == item.product_id,
                Listing.fulfillment == Fulfillment.FBA).limit(1)).scalar_one_or_none()
            if sku is None:
                missing.append(item.channel_sku)
                continue
            lines.append(FulfillmentLine(channel_sku=sku, line_id=str(item.id),
                                         quantity=item.quantity - item.quantity_shipped))
        if missing:
            problems[reference] = f"no FBA listing on this integration for {', '.join(missing)}"
            continue
        buyer_phone, buyer_email = _buyer_contact(order, cipher)
        phone = contact.choose(address.phone or buyer_phone, contact.phone)
        email = contact.choose(buyer_email, contact.email)
        requests.append(FulfillmentRequest(
            fulfillment_order_id=reference, marketplace=marketplace,
            ordered_at=order.purchased_at, address=replace(address, phone=phone),
            lines=tuple(lines), displayable_order_id=order.channel_order_id[:40],
            notification_emails=(email,) if email else ()))
    return requests, problems


def _buyer_contact(order: Order, cipher: pii.PiiCipher) -> tuple[str | None, str | None]:
    def opened(column: str) -> str | None:
        aad = pii.order_aad(column, order.integration_id, order.channel_order_id)
        return cipher.open_optional(getattr(order, column), aad)
    return opened("buyer_phone"), opened("buyer_email")


def _address(order: Order, cipher: pii.PiiCipher | None) -> Address | None:
    if cipher is None or order.ship_to_address is None:
        return None
    aad = pii.order_aad("ship_to_address", order.integration_id, order.channel_order_id)
    return Address(**json.loads(cipher.open(order.ship_to_address, aad)))


def mark_sent(session: Session, integration_id: int, reference: str) -> None:
    row = _row(session, integration_id, reference)
    if row.status is None:
        row.status = SUBMITTED
        row.updated_at = transaction_now()


def mark_rejected(session: Session, integration_id: int, reference: str, reason: str) -> None:
    """The channel (or we) cannot ship it: closed, with the reason kept for the seller."""
    row = _row(session, integration_id, reference)
    row.status, row.open = REJECTED, False
    row.carrier = None
    row.tracking_numbers = [{"error": reason[:500]}]
    row.updated_at = transaction_now()


def _row(session: Session, integration_id: int, reference: str) -> FulfillmentOrder:
    return session.execute(select(FulfillmentOrder).where(
        FulfillmentOrder.integration_id == integration_id,
        FulfillmentOrder.seller_fulfillment_order_id == reference)).scalar_one()


def shipment_for_origin(session: Session, row: FulfillmentOrder, order: Order,
                        package: PackageTracking) -> int | None:
    """The MCF order shipped: record it as the order's shipment (once, under a key of the
    fulfilment order) so the channel the order came from hears carrier and tracking.
    Returns the origin integration's id when it has something to confirm, else None.

    One shipment per fulfilment order, with every item: a channel confirms the order's
    lines once; a split MCF order's further packages stay on the fulfilment order row.
    """
    key = f"mcf:{row.seller_fulfillment_order_id}"
    if session.execute(select(ShipmentRow.id).where(ShipmentRow.key == key)).scalar():
        return None
    channel = session.execute(select(IntegrationRow.channel).where(
        IntegrationRow.id == order.integration_id)).scalar_one()
    items = list(session.execute(select(OrderItem).where(OrderItem.order_id == order.id)
                                 .order_by(OrderItem.id)).scalars())
    lines = [{"channel_item_id": item.channel_item_id,
              "quantity": item.quantity - (item.quantity_shipped or 0)}
             for item in items if item.quantity > (item.quantity_shipped or 0)]
    for item in items:
        item.quantity_shipped = item.quantity
    remote = channel != MANUAL_CHANNEL
    now = transaction_now()
    session.add(ShipmentRow(
        key=key, order_id=order.id, carrier=package.carrier or "Other",
        tracking_number=package.tracking_number, ship_method=None,
        shipped_at=package.shipped_at or now, lines=lines, attempts=0,
        confirm_state="pending" if remote else "confirmed",
        confirmed_at=None if remote else now))
    session.flush()
    return order.integration_id if remote else None
