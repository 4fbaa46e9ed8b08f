"""Orders the channel ships for the seller (Amazon MCF): which to send, and what came back.

``orders.fulfill_mcf`` records the wish (a ``fulfillment_orders`` row with no status);
the ``fetch_tracking`` job sends each unsent one through the channel's
``create_fulfillment`` hook, then follows all open ones for tracking.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain import pii
from marketsync.core.store.models import FulfillmentOrder, IntegrationRow, Listing, Order, OrderItem
from marketsync.core.store.timing import transaction_now
from marketsync.core.types import Address, Fulfillment, FulfillmentLine, FulfillmentRequest

SUBMITTED = "Submitted"
REJECTED = "Rejected"


def unsent(session: Session, integration_id: int, cipher: pii.PiiCipher | None
           ) -> tuple[list[FulfillmentRequest], dict[str, str]]:
    """Requests for the integration's fulfilment orders not yet sent, and the ones that
    cannot be sent (no FBA listing, no address) with the reason."""
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
        requests.append(FulfillmentRequest(
            fulfillment_order_id=reference, marketplace=marketplace,
            ordered_at=order.purchased_at, address=address, lines=tuple(lines),
            displayable_order_id=order.channel_order_id[:40]))
    return requests, problems


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
