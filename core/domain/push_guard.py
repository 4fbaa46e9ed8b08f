"""What stands between a computed stock push and the channel: the review of a newly
connected integration, and the safety valve on every push.

Both exist because a wrong local figure costs more on the channel than a late one: a push
that zeroes a shop's listings stops its sales until someone notices. So a newly connected
integration imports everything but sends only what leaves the channel's quantities as
they are, until the seller has looked at ``marketsync stock plan`` and said ``stock
accept`` (or set ``review_first_push: false``); and any push that would zero a large
share of an integration's listings, or cut its listed total by a large share, at once, is
held whole and reported until accepted the same way.

The state is one column of the integration (``push_hold``): ``review`` (new, not yet
accepted), ``valve`` (tripped, the reason beside it), ``released`` (accepted: the pushes
that follow skip the valve until nothing is pending any more), or NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from marketsync.core.domain.inventory import StockBatch
from marketsync.core.store.models import IntegrationRow, Listing, Product
from marketsync.core.store.timing import transaction_now
from marketsync.core.types import Fulfillment

REVIEW, VALVE, RELEASED = "review", "valve", "released"


class UnknownAlias(LookupError):
    """No integration with that alias."""


@dataclass(frozen=True, slots=True)
class ValveLimits:
    """When a push is too big a cut to send without a person saying so. Both conditions
    need a floor as well as a share, so that a three-listing shop selling its last unit
    of one product does not trip it."""

    zeroed_share: float = 0.5  #: more than this share of the listings that have stock ...
    zeroed_min: int = 3        #: ... and at least this many go to 0 in one push
    cut_share: float = 0.5     #: the listed total drops by more than this share ...
    cut_min: int = 20          #: ... and by at least this many units


@dataclass(frozen=True, slots=True)
class Screened:
    """What to send now, and what the guard decided (for the log and the metric)."""

    batch: StockBatch
    held: int = 0              #: updates kept back by the review
    tripped: str | None = None  #: the valve's reason, when it tripped on this push


def screen(session: Session, integration_id: int, batch: StockBatch, *, review: bool,
           limits: ValveLimits) -> Screened:
    """Filter one push through the integration's hold state; records a valve trip.

    :param review: the integration's ``review_first_push`` setting (False: no review).
    """
    row = session.get(IntegrationRow, integration_id)
    assert row is not None
    if row.push_hold == REVIEW and not review:
        row.push_hold = None
    if row.push_hold == VALVE:
        return Screened(StockBatch(), held=len(batch.updates))
    if row.push_hold == RELEASED:
        if not batch:
            row.push_hold = None  # everything accepted has gone out
        return Screened(batch)
    if not batch:
        return Screened(batch)
    channel = _channel_quantities(session, integration_id)
    if row.push_hold == REVIEW:
        same = tuple(u for u in batch.updates if channel.get(u.channel_sku) == u.quantity)
        kept = StockBatch(same, {u.channel_sku: batch.generations[u.channel_sku] for u in same})
        return Screened(kept, held=len(batch.updates) - len(same))
    reason = valve(channel, batch, limits)
    if reason is None:
        return Screened(batch)
    row.push_hold, row.push_hold_reason, row.push_hold_at = VALVE, reason, transaction_now()
    return Screened(StockBatch(), held=len(batch.updates), tripped=reason)


def valve(channel: dict[str, int], batch: StockBatch, limits: ValveLimits) -> str | None:
    """The reason this push must be held, or None. ``channel`` is SKU -> the quantity the
    channel acknowledged for every pushed listing of the integration."""
    after = dict(channel)
    zeroed = 0
    for update in batch.updates:
        before = channel.get(update.channel_sku)
        if before is not None and before > 0 and update.quantity == 0:
            zeroed += 1
        after[update.channel_sku] = update.quantity
    stocked = sum(1 for quantity in channel.values() if quantity > 0)
    if zeroed >= limits.zeroed_min and zeroed > limits.zeroed_share * stocked:
        return (f"{zeroed} of {stocked} listings with stock would go to 0 at once "
                f"(limit {limits.zeroed_share:.0%})")
    total, total_after = sum(channel.values()), sum(after.values())
    cut = total - total_after
    if cut >= limits.cut_min and cut > limits.cut_share * total:
        return (f"the listed quantity would fall from {total} to {total_after} at once "
                f"(limit {limits.cut_share:.0%} less)")
    return None


def _channel_quantities(session: Session, integration_id: int) -> dict[str, int]:
    return {sku: int(quantity) for sku, quantity in session.execute(
        select(Listing.channel_sku, Listing.acknowledged_quantity).where(
            Listing.integration_id == integration_id,
            Listing.fulfillment == Fulfillment.MFN, Listing.on_channel.is_(True),
            Listing.product_id.is_not(None), Listing.acknowledged_quantity.is_not(None)))}


# --- the seller's side ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedChange:
    alias: str
    marketplace: str
    channel_sku: str
    sku: str
    channel_quantity: int | None
    wanted_quantity: int


@dataclass(frozen=True, slots=True)
class Plan:
    """Per integration: its hold (None, review, valve, released) and reason; the changes
    (the first ``limit`` of each integration when bounded) and how many there are."""

    holds: dict[str, tuple[str | None, str | None]]
    changes: list[PlannedChange]
    counts: dict[str, int] = field(default_factory=dict)  #: alias -> changes in all


def plan(session: Session, alias: str | None = None, *, limit: int | None = None,
         held_only: bool = False) -> Plan:
    """Every MFN listing whose next push would change the channel's quantity, listing by
    listing: what ``stock accept`` would let through.

    :param limit: at most this many changes per integration (the status page: a shop of
        10,000 listings under review must not make a page of 10,000 rows); ``counts``
        still says how many there are.
    :param held_only: only integrations under review or held by the valve.
    """
    query = select(IntegrationRow).order_by(IntegrationRow.alias)
    if alias is not None:
        query = query.where(IntegrationRow.alias == alias)
    if held_only:
        query = query.where(IntegrationRow.push_hold.in_((REVIEW, VALVE)))
    rows = session.execute(query).scalars().all()
    if alias is not None and not rows and not held_only:
        raise UnknownAlias(f"unknown integration {alias!r} (see `marketsync status`)")
    holds = {row.alias: (row.push_hold, row.push_hold_reason) for row in rows}
    changes: list[PlannedChange] = []
    counts: dict[str, int] = {}
    for row in rows:
        differs = (Listing.integration_id == row.id, Listing.fulfillment == Fulfillment.MFN,
                   Listing.on_channel.is_(True), Listing.wanted_quantity.is_not(None),
                   or_(Listing.acknowledged_quantity.is_(None),
                       Listing.acknowledged_quantity != Listing.wanted_quantity))
        listed = (select(Listing.channel_sku, Product.sku, Listing.acknowledged_quantity,
                         Listing.wanted_quantity)
                  .join(Product, Product.id == Listing.product_id).where(*differs)
                  .order_by(Listing.channel_sku))
        if limit is not None:
            listed = listed.limit(limit)
        found = [PlannedChange(row.alias, row.marketplace, channel_sku, sku, acknowledged,
                               int(wanted))
                 for channel_sku, sku, acknowledged, wanted in session.execute(listed)]
        counts[row.alias] = (len(found) if limit is None or len(found) < limit else
                             session.execute(select(func.count()).select_from(Listing)
                                             .join(Product, Product.id == Listing.product_id)
                                             .where(*differs)).scalar_one())
        changes += found
    return Plan(holds, changes, counts)


def accept(session: Session, alias: str) -> str | None:
    """Release the integration's pushes (the review, or a tripped valve); the ones that
    follow skip the valve until everything pending has gone out. Returns the hold that
    was released (None: there was none, and nothing changes)."""
    row = session.execute(
        select(IntegrationRow).where(IntegrationRow.alias == alias)).scalar_one_or_none()
    if row is None:
        raise UnknownAlias(f"unknown integration {alias!r} (see `marketsync status`)")
    was = row.push_hold
    if was in (REVIEW, VALVE):
        row.push_hold, row.push_hold_reason, row.push_hold_at = RELEASED, None, transaction_now()
    return was if was in (REVIEW, VALVE) else None


def limits_from_percent(zeroed: int, cut: int) -> ValveLimits:
    return replace(ValveLimits(), zeroed_share=zeroed / 100, cut_share=cut / 100)
