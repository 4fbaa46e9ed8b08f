"""Correcting a shipment already entered: a mistyped tracking number or carrier.

A correction is not a second shipment. It rewrites the carrier and tracking number of the
shipment it corrects and queues that shipment's confirmation again under the same key, so
the channel hears about the same package (Amazon: the same ``packageReferenceId`` is an
edit of the confirmed package) and no stock moves. Shipping goes through
``orders.ship_order``; this module only holds the correction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain.orders import OrderStateError, get_order
from marketsync.core.store.models import ShipmentRow


def correct_shipment(
    session: Session,
    order_id: int,
    *,
    carrier: str,
    tracking_number: str,
    ship_method: str | None = None,
    was: str | None = None,
) -> str:
    """Give the order's shipment (the one whose tracking number is ``was``; it may be
    left out when the order has one shipment) a new carrier and tracking number, and have
    the channel told again. The same correction twice changes nothing the second time.
    Returns the shipment's key (unchanged: the channel's package reference hangs on it)."""
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    if not carrier or not tracking_number:
        raise ValueError("a corrected shipment needs a carrier and a tracking number")
    order = get_order(session, order_id, lock=True)
    rows = list(session.execute(select(ShipmentRow).where(ShipmentRow.order_id == order.id)
                                .order_by(ShipmentRow.id)).scalars())
    if not rows:
        raise OrderStateError(f"order {order.id} has no shipment to correct; ship it first")
    done = next((r for r in rows if (r.carrier, r.tracking_number) == (carrier, tracking_number)
                 and (ship_method is None or r.ship_method == ship_method)), None)
    if done is not None and (was is None or was.strip() == tracking_number):
        return done.key  # already corrected (a repeated command or CSV row)
    if was is not None:
        matching = [r for r in rows if r.tracking_number == was.strip()]
        if not matching:
            known = ", ".join(r.tracking_number for r in rows)
            raise ValueError(f"order {order.id} has no shipment with tracking number "
                             f"{was.strip()!r} (it has: {known})")
        row = matching[0]
    elif len(rows) == 1:
        row = rows[0]
    else:
        known = ", ".join(r.tracking_number for r in rows)
        raise ValueError(f"order {order.id} has {len(rows)} shipments ({known}); say which "
                         f"one to correct by its old tracking number")
    row.carrier = carrier
    row.tracking_number = tracking_number
    if ship_method is not None:
        row.ship_method = ship_method
    row.confirm_state = "pending"  # confirmed before: the channel edits its package
    row.last_error = None
    session.flush()
    return row.key
