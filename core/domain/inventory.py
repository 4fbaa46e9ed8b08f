"""The stock master: on hand, reserved and available per product, and what to push.

Every change of stock is one row of the movement ledger whose ``key`` is unique
(``order-item:17:reserve``, ``manual:<uuid>`` ...). The product's counters change only in
the unit of work that inserted that row, so an effect replayed by a re-import, a retried
job or a restart after a crash hits the unique key and changes nothing.

Channels get ``available = on hand - reserved`` (never below zero). Each merchant-fulfilled
listing keeps the quantity it should have (``wanted_quantity``) and a ``push_generation``
that moves on whenever that changes; a push records the generation it sent, and only that
generation counts as acknowledged when the channel accepts it. A change made while a push
is in flight therefore leaves the listing pending and it is pushed again afterwards.
FBA listings are never pushed: their quantity is the channel's (``products.apply_channel_stock``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from marketsync.core.domain import ledger
from marketsync.core.store import submissions
from marketsync.core.store.models import (
    IntegrationRow,
    Listing,
    Order,
    OrderItem,
    Product,
    StockMovement,
    SubmissionRow,
)
from marketsync.core.store.timing import transaction_now
from marketsync.core.store.upsert import insert_or_update
from marketsync.core.types import (
    Fulfillment,
    ItemResult,
    Money,
    StockUpdate,
    Submission,
    SubmissionReport,
)

#: handling time when neither the integration nor the product says otherwise
DEFAULT_HANDLING_TIME_DAYS = 1
#: seconds a listing the channel refused waits before it is sent again; doubled per
#: refusal in a row, up to ``REFUSED_RETRY_CAP`` (a listing deleted on the channel was
#: re-sent every two seconds until the next product import noticed it was gone)
REFUSED_RETRY_FIRST = 60.0
REFUSED_RETRY_CAP = 3600.0


class UnknownSku(LookupError):
    """No product with that SKU; the message names it (the CLI prints it and exits 1)."""


#: the lowest on hand a person's adjustment may leave without ``force``
ON_HAND_FLOOR = 0


class BelowFloor(ValueError):
    """An adjustment would take on hand below ``ON_HAND_FLOOR``; nothing was changed."""


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """What the channels are offered: never below zero (see ``short``)."""
        return max(self.on_hand - self.reserved, 0)

    @property
    def short(self) -> int:
        """Units open orders hold beyond what is on hand (a count below the open orders,
        or a channel that oversold): the product is flagged until someone looks."""
        return max(self.reserved - self.on_hand, 0)


@dataclass(frozen=True, slots=True)
class StockBatch:
    """What one push should send: the hook's updates and the generation of each SKU."""

    updates: tuple[StockUpdate, ...] = ()
    generations: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.updates)


# --- products and the ledger -------------------------------------------------------------------


def product_by_sku(session: Session, sku: str, *, lock: bool = False) -> Product:
    query = select(Product).where(Product.sku == sku)
    if lock:
        query = query.with_for_update()
    product = session.execute(query.execution_options(populate_existing=lock)).scalar_one_or_none()
    if product is None:
        raise UnknownSku(f"unknown SKU {sku!r}: no product has it (see `marketsync stock show`)")
    return product


def ensure_product(session: Session, sku: str, **values: object) -> Product:
    """The product ``sku``, created with ``values`` if new (fields of a new one only).

    Two integrations of one account (on two replicas, or two jobs of one daemon) can meet
    the same new SKU at once: both look, find nothing and insert. The insert therefore
    does nothing on a clash; on PostgreSQL it waits for the other transaction, and the
    second look (a new snapshot under READ COMMITTED) finds the product it made, so both
    listings map to the one product instead of one job failing on ``uq_products_sku``."""
    query = select(Product).where(Product.sku == sku)
    product = session.execute(query).scalar_one_or_none()
    if product is None:
        insert_or_update(session, Product, {"sku": sku, "on_hand": 0, "reserved": 0, **values},
                         conflict=["sku"])
        product = session.execute(query).scalar_one()
    return product


def apply_movement(
    session: Session,
    product_id: int,
    key: str,
    *,
    reason: str,
    on_hand: int = 0,
    reserved: int = 0,
    integration_id: int | None = None,
    order_id: int | None = None,
    order_item_id: int | None = None,
    note: str | None = None,
    refresh: bool = True,
) -> bool:
    """Apply one stock effect once. Returns False (and changes nothing) when ``key`` was
    applied before: the database's unique key decides, so two replicas racing on the same
    effect cannot both win. ``refresh=False`` leaves the listings' wishes alone, for a
    caller that applies a second effect at once and must not ask for a push in between."""
    movement = ledger.Movement(product_id=product_id, key=key, reason=reason,
                               on_hand=on_hand, reserved=reserved,
                               integration_id=integration_id, order_id=order_id,
                               order_item_id=order_item_id, note=note)
    inserted, moved = ledger.apply_movements(session, [movement])
    if refresh:
        refresh_wanted_many(session, moved)
    return key in inserted


def set_on_hand(session: Session, sku: str, quantity: int, *, note: str | None = None,
                key: str | None = None) -> StockLevel:
    """Count the shelf: on hand becomes ``quantity`` (recorded as the difference)."""
    if quantity < 0:
        raise ValueError(f"stock of {sku!r} cannot be set to {quantity}: must be 0 or more")
    product = product_by_sku(session, sku, lock=True)
    delta = quantity - product.on_hand
    apply_movement(session, product.id, key or f"manual:{uuid.uuid4()}", reason="set",
                   on_hand=delta, note=note)
    return stock_level(session, sku)


def adjust(session: Session, sku: str, delta: int, *, reason: str,
           key: str | None = None, force: bool = False) -> StockLevel:
    """Add (or with a negative ``delta`` remove) units, e.g. a delivery or breakage.

    A removal that would take on hand below ``ON_HAND_FLOOR`` raises BelowFloor unless
    ``force``: a sign typed wrong (-1000 for +1000) should stop, not reach the channels."""
    if not reason.strip():
        raise ValueError(f"adjusting {sku!r} needs a reason")
    product = product_by_sku(session, sku, lock=True)
    if delta < 0 and product.on_hand + delta < ON_HAND_FLOOR and not force:
        raise BelowFloor(f"removing {-delta} of {sku!r} would take on hand from "
                         f"{product.on_hand} to {product.on_hand + delta}, below "
                         f"{ON_HAND_FLOOR} (--force allows it)")
    apply_movement(session, product.id, key or f"manual:{uuid.uuid4()}", reason="adjust",
                   on_hand=delta, note=reason.strip())
    return stock_level(session, sku)


def stock_level(session: Session, sku: str) -> StockLevel:
    product = product_by_sku(session, sku)
    return StockLevel(product.sku, product.on_hand, product.reserved)


def stock_levels(session: Session) -> list[StockLevel]:
    rows = session.execute(
        select(Product).where(Product.deleted_at.is_(None)).order_by(Product.sku)
    ).scalars()
    return [StockLevel(p.sku, p.on_hand, p.reserved) for p in rows]


def ledger_totals(session: Session, product_id: int) -> tuple[int, int]:
    """(on hand, reserved) summed from the ledger: what the counters must equal."""
    on_hand, reserved = session.execute(
        select(func.coalesce(func.sum(StockMovement.delta_on_hand), 0),
               func.coalesce(func.sum(StockMovement.delta_reserved), 0))
        .where(StockMovement.product_id == product_id)
    ).one()
    return int(on_hand), int(reserved)


# --- opening stock from the channels ----------------------------------------------------------

#: ledger reasons that make up a product's opening stock ("initial" is the older, single
#: movement written before openings were reconciled with open orders)
OPENING_REASONS = ("initial", "opening")


def reconcile_opening(session: Session, product_id: int, *, refresh: bool = True) -> bool:
    """Raise the product's opening stock to what its channels justify; True if it moved.

    A merchant-fulfilled quantity on Amazon already excludes the units of orders not yet
    shipped, so the shelf held the channel's quantity *plus* those units when the listing
    was first imported. Orders of that time may arrive before the listing, after it, or
    across a crash in between; whichever comes last calls this, and the opening becomes

        max over stock pools of (pool's opening quantity + units its orders reserved
                                 that were purchased before the pool's snapshot)

    where a pool is the listings of one regional account and channel SKU (Amazon keeps
    one MFN quantity for all marketplaces of a region; the first snapshot of the pool
    counts). Several regions disagreeing: the largest figure wins, so no region is ever
    offered less than it showed because of our arithmetic, and the differences the
    others would see are what ``stock plan`` lists before the first push.

    The ledger key carries the target (``opening:<product>:<units>``), so replaying it
    adds nothing, and the opening only ever grows. Products the seller counts locally
    (``stock set``, or stock entered before the first listing arrived) keep their count.
    """
    return bool(reconcile_openings(session, [product_id], refresh=refresh))


def reconcile_openings(session: Session, product_ids: Iterable[int], *,
                       refresh: bool = True) -> list[Product]:
    """``reconcile_opening`` for several products in a few statements whatever their
    number (an import page calls it once for all the products its orders touched).
    Returns the products whose opening moved."""
    ids = sorted(set(product_ids))
    if not ids:
        return []
    ledger.lock_products(session, ids)
    pools = _opening_pools(session, ids)
    facts = _opening_facts(session, list(pools))
    targets: dict[int, int] = {}
    for product_id, product_pools in pools.items():
        first = min(at for at, _ in product_pools.values())
        counted = facts.get((product_id, "set")) is not None or (
            (adjusted := facts.get((product_id, "adjust"))) is not None and adjusted[1] < first)
        if not counted:
            targets[product_id] = 0
    held = _held_before(session, {product_id: pools[product_id] for product_id in targets})
    movements = []
    for product_id in targets:
        target = max(quantity + held.get((product_id, account_id, sku, at), 0)
                     for (account_id, sku), (at, quantity) in pools[product_id].items())
        current = sum(facts.get((product_id, reason), (0, None))[0]
                      for reason in OPENING_REASONS)
        if target > current:
            movements.append(ledger.Movement(
                product_id=product_id, key=f"opening:{product_id}:{target}", reason="opening",
                on_hand=target - current,
                note="opening stock: the channel's quantity plus the units its open orders held"))
    _, moved = ledger.apply_movements(session, movements)
    if refresh:
        refresh_wanted_many(session, moved)
    return moved


def opening_due(session: Session, product_id: int, purchased_at: datetime | None) -> bool:
    """Whether an order purchased at ``purchased_at`` predates a snapshot of one of the
    product's listings (its units were already missing from that channel quantity)."""
    latest = latest_snapshots(session, [product_id]).get(product_id)
    return purchased_at is not None and latest is not None and latest > purchased_at


def latest_snapshots(session: Session, product_ids: Iterable[int]) -> dict[int, datetime]:
    """product -> the latest opening snapshot of its listings (products without one are
    left out): an order purchased before it is ``opening_due``. One query per page."""
    latest: dict[int, datetime] = {}
    for part in ledger.chunked(sorted(set(product_ids))):
        rows = session.execute(
            select(Listing.product_id, Listing.opening_at)
            .where(Listing.product_id.in_(part), Listing.opening_at.is_not(None))
        ).all()
        for product_id, at in rows:
            if product_id not in latest or at > latest[product_id]:
                latest[product_id] = at
    return latest


Pools = dict[tuple[int, str], tuple[datetime, int]]


def _opening_pools(session: Session, product_ids: Sequence[int]) -> dict[int, Pools]:
    """product -> {(account, channel SKU): (first snapshot time, the quantity it showed)};
    products without a snapshot of an MFN listing are left out."""
    pools: dict[int, Pools] = {}
    for part in ledger.chunked(product_ids):
        rows = session.execute(
            select(Listing.product_id, IntegrationRow.account_id, Listing.channel_sku,
                   Listing.opening_at, Listing.opening_quantity)
            .join(IntegrationRow, IntegrationRow.id == Listing.integration_id)
            .where(Listing.product_id.in_(part), Listing.fulfillment == Fulfillment.MFN,
                   Listing.opening_at.is_not(None), Listing.opening_quantity.is_not(None))
            .order_by(Listing.opening_at, Listing.id)
        ).all()
        for product_id, account_id, sku, at, quantity in rows:
            pools.setdefault(product_id, {}).setdefault((account_id, sku),
                                                        (at, max(int(quantity), 0)))
    return pools


def _opening_facts(session: Session, product_ids: Sequence[int]
                   ) -> dict[tuple[int, str], tuple[int, datetime]]:
    """(product, reason) -> (on-hand units, first time) of the ledger's openings and of
    the seller's own counts and adjustments, one grouped query for all products."""
    facts: dict[tuple[int, str], tuple[int, datetime]] = {}
    reasons = (*OPENING_REASONS, "set", "adjust")
    for part in ledger.chunked(sorted(product_ids)):
        rows = session.execute(
            select(StockMovement.product_id, StockMovement.reason,
                   func.coalesce(func.sum(StockMovement.delta_on_hand), 0),
                   func.min(StockMovement.created_at))
            .where(StockMovement.product_id.in_(part), StockMovement.reason.in_(reasons))
            .group_by(StockMovement.product_id, StockMovement.reason)
        ).all()
        for product_id, reason, units, first in rows:
            facts[(product_id, reason)] = (int(units), first)
    return facts


def _held_before(session: Session, pools: dict[int, Pools]
                 ) -> dict[tuple[int, int, str, datetime], int]:
    """(product, account, channel SKU, snapshot) -> units reserved for the pool's orders
    purchased before its snapshot. One query per distinct snapshot time (the listings
    of one product import share theirs), not one per pool."""
    by_snapshot: dict[datetime, set[int]] = {}
    for product_id, product_pools in pools.items():
        for at, _ in product_pools.values():
            by_snapshot.setdefault(at, set()).add(product_id)
    held: dict[tuple[int, int, str, datetime], int] = {}
    for at, product_ids in by_snapshot.items():
        for part in ledger.chunked(sorted(product_ids)):
            rows = session.execute(
                select(StockMovement.product_id, IntegrationRow.account_id,
                       OrderItem.channel_sku,
                       func.coalesce(func.sum(StockMovement.delta_reserved), 0))
                .join(OrderItem, OrderItem.id == StockMovement.order_item_id)
                .join(Order, Order.id == OrderItem.order_id)
                .join(IntegrationRow, IntegrationRow.id == Order.integration_id)
                .where(StockMovement.product_id.in_(part), StockMovement.reason == "reserve",
                       Order.purchased_at < at)
                .group_by(StockMovement.product_id, IntegrationRow.account_id,
                          OrderItem.channel_sku)
            ).all()
            for product_id, account_id, sku, units in rows:
                held[(product_id, account_id, sku, at)] = int(units)
    return held


# --- what channels should have --------------------------------------------------------------


def refresh_wanted(session: Session, product: Product) -> int:
    """Set the quantity and handling time every MFN listing of ``product`` should have;
    listings whose wish changed get a new generation (a push is due). Returns how many."""
    return refresh_wanted_many(session, [product])


def refresh_wanted_many(session: Session, products: Sequence[Product]) -> int:
    """``refresh_wanted`` for several products with one query for all their listings
    (an import page refreshes each product it touched once, at its end)."""
    by_id = {product.id: product for product in products}
    changed = 0
    for part in ledger.chunked(sorted(by_id)):
        listings = session.execute(
            select(Listing).where(Listing.product_id.in_(part),
                                  Listing.fulfillment == Fulfillment.MFN)
            .order_by(Listing.id)
        ).scalars()
        for listing in listings:
            product = by_id[listing.product_id]
            changed += want(listing, max(product.on_hand - product.reserved, 0),
                            product.handling_time_days)
    return changed


def want(listing: Listing, quantity: int, handling_time: int | None) -> bool:
    """Record what ``listing`` should have and bump its generation when a push is due:
    the channel's acknowledged quantity differs and nothing newer is pending, or the wish
    moved while a push is pending or in flight (that push will acknowledge the old one),
    or the handling time changed."""
    handling_changed = listing.wanted_handling_time != handling_time
    quantity_changed = listing.wanted_quantity != quantity
    pending = listing.push_generation > listing.pushed_generation
    needed = listing.acknowledged_quantity != quantity
    listing.wanted_quantity = quantity
    listing.wanted_handling_time = handling_time
    if handling_changed or (quantity_changed and pending) or (needed and not pending):
        listing.push_generation = (listing.push_generation or 0) + 1
        return True
    return False


def handling_times_due(session: Session, integration_id: int, default_days: int) -> int:
    """Ask for a push of every MFN listing whose handling time (the product's override,
    else the integration's ``default_days``) is not the one the channel last acknowledged
    from us, even when its quantity did not change: otherwise a new default reached the
    channel only with the next quantity push for other reasons. A channel that does not
    report handling times (Amazon's listings report) gets each listing once. Returns how
    many listings became due."""
    rows = session.execute(
        select(Listing, Product.handling_time_days)
        .join(Product, Product.id == Listing.product_id)
        .where(Listing.integration_id == integration_id,
               Listing.fulfillment == Fulfillment.MFN, Listing.on_channel.is_(True),
               Listing.wanted_quantity.is_not(None),
               Listing.push_generation <= Listing.pushed_generation)
    ).all()
    due = 0
    for listing, override in rows:
        wanted = default_days if override is None else override
        if listing.acknowledged_handling_time != wanted:
            listing.push_generation = (listing.push_generation or 0) + 1
            due += 1
    return due


def pending_push_integrations(session: Session) -> list[int]:
    """Integrations with at least one MFN listing waiting for a stock push: after a unit of
    work that changed stock, the caller triggers their ``push_stock`` job on demand."""
    return list(session.execute(
        select(Listing.integration_id).where(
            Listing.fulfillment == Fulfillment.MFN, Listing.on_channel.is_(True),
            Listing.product_id.is_not(None),
            Listing.push_generation > Listing.pushed_generation,
        ).distinct().order_by(Listing.integration_id)
    ).scalars())


def _in_flight_skus(session: Session, integration_id: int, kind: str) -> set[str]:
    skus: set[str] = set()
    for stored in submissions.in_flight(session, integration_id):
        if stored.kind == kind:
            skus.update(stored.channel_skus)
    return skus


def pending_stock_updates(
    session: Session,
    integration_id: int,
    limit: int | None = None,
    *,
    default_handling_time_days: int = DEFAULT_HANDLING_TIME_DAYS,
) -> StockBatch:
    """MFN listings of the integration whose wanted quantity has a generation the channel
    has not acknowledged and that are not already in flight; oldest change first.

    ``default_handling_time_days`` is the integration's setting (configuration), used
    where the product has no override of its own.
    """
    busy = _in_flight_skus(session, integration_id, "stock")
    query = (
        select(Listing)
        .where(
            Listing.integration_id == integration_id,
            Listing.fulfillment == Fulfillment.MFN,
            Listing.product_id.is_not(None),
            Listing.on_channel.is_(True),
            Listing.wanted_quantity.is_not(None),
            Listing.push_generation > Listing.pushed_generation,
            or_(Listing.push_retry_at.is_(None), Listing.push_retry_at <= transaction_now()),
        )
        .order_by(Listing.updated_at, Listing.id)
    )
    updates: list[StockUpdate] = []
    generations: dict[str, int] = {}
    now = transaction_now()
    currency: str | None = None
    for listing in session.execute(query).scalars():
        if listing.channel_sku in busy:
            continue
        handling = listing.wanted_handling_time
        price = None
        if price_due(listing, now):
            if listing.currency is None and currency is None:
                currency = integration_currency(session, integration_id)
            price = Money(amount=listing.wanted_price, currency=listing.currency or currency)
        updates.append(StockUpdate(
            channel_sku=listing.channel_sku,
            quantity=int(listing.wanted_quantity or 0),
            handling_time_days=default_handling_time_days if handling is None else handling,
            price=price,
        ))
        generations[listing.channel_sku] = listing.push_generation
        if limit is not None and len(updates) >= limit:
            break
    return StockBatch(tuple(updates), generations)


def price_due(listing: Listing, now: datetime) -> bool:
    """A local price the channel has not acknowledged, and not waiting after a refusal."""
    return (listing.wanted_price is not None
            and listing.wanted_price != listing.acknowledged_price
            and (listing.price_retry_at is None or listing.price_retry_at <= now))


def carries_price(listing: Listing) -> bool:
    """Whether the listing's price goes out in its stock push (quantity, handling time and
    price in one message) rather than through ``push_prices``: merchant-fulfilled and
    mapped, so a stock push is possible at all. FBA listings have no quantity of ours."""
    return (listing.fulfillment is Fulfillment.MFN and listing.product_id is not None
            and listing.wanted_quantity is not None)


def integration_currency(session: Session, integration_id: int) -> str:
    currency = session.execute(
        select(Listing.currency).where(Listing.integration_id == integration_id,
                                       Listing.currency.is_not(None)).limit(1)
    ).scalar_one_or_none()
    return currency or ""


def record_stock_push(
    session: Session, integration_id: int, batch: StockBatch, submission: Submission
) -> int:
    """Store the submission ``push_stock`` returned, with the generation and quantity of
    every SKU sent; results the channel gave at once are applied now. Returns its id."""
    submission_id = submissions.record(
        session, integration_id, submission, generations=batch.generations
    )
    row = session.get(SubmissionRow, submission_id)
    assert row is not None
    # the sent quantities are ours to keep next to the generations (see the report note)
    row.payload = {**row.payload, "quantities": {u.channel_sku: u.quantity for u in batch.updates},
                   "handling": {u.channel_sku: u.handling_time_days for u in batch.updates},
                   "prices": {u.channel_sku: str(u.price.amount) for u in batch.updates
                              if u.price is not None}}
    if submission.results and submission.poll_after <= 0:
        submissions.apply_report(session, submission_id,
                                 SubmissionReport(done=True, results=submission.results))
        apply_push_results(session, submission_id, submission.results)
    return submission_id


def apply_push_results(
    session: Session, submission_id: int, results: Sequence[ItemResult] | None = None
) -> list[str]:
    """Acknowledge what the channel accepted: for each accepted SKU, the generation and the
    quantity that were *sent* (not the current wish). Rejected or missing SKUs stay pending
    and go out with the next push. Returns the SKUs still pending afterwards. Price
    submissions are ``products.apply_submission_results``'s to route."""
    stored = submissions.get(session, submission_id)
    if results is None:
        results = stored.item_results
    row = session.get(SubmissionRow, submission_id)
    payload = row.payload if row is not None else {}
    quantities = payload.get("quantities", {})
    handling = payload.get("handling", {})
    prices = payload.get("prices", {})
    accepted = {r.channel_sku for r in results if r.accepted}
    refused = refusals(results)
    now = transaction_now()
    still_pending: list[str] = []
    for listing in _listings(session, stored.integration_id, stored.channel_skus):
        sku = listing.channel_sku
        sent = stored.generations.get(sku)
        if sku in accepted and sent is not None:
            if sent > listing.pushed_generation:
                listing.pushed_generation = sent
                listing.acknowledged_quantity = quantities.get(sku)
                listing.channel_quantity = quantities.get(sku)
                listing.acknowledged_handling_time = handling.get(sku)
            accepted_now(listing, "push")
            if sku in prices:
                listing.acknowledged_price = listing.price = Decimal(prices[sku])
                accepted_now(listing, "price")
        elif sku in refused and sent is not None and sku in prices:
            # the message carried a price too: blame the price (it waits), and the
            # quantity goes again at once on its own, so a bad price never holds it back
            refused_now(listing, "price", refused[sku], now)
        elif sku in refused and sent is not None:
            refused_now(listing, "push", refused[sku], now)
        if listing.push_generation > listing.pushed_generation:
            still_pending.append(sku)
    return still_pending


def refusals(results: Iterable[ItemResult]) -> dict[str, str]:
    """SKU -> the channel's reason, for every result that is a refusal."""
    return {r.channel_sku: r.message or "refused by the channel"
            for r in results if not r.accepted}


def refused_now(listing: Listing, what: str, reason: str, now: datetime) -> None:
    """Keep the channel's reason and hold the listing's ``what`` ("push" for stock,
    "price") back, longer after each refusal in a row.

    SKUs missing from a report (a feed that failed as a whole, or never finished) are not
    refusals: they go out again with the next push."""
    refusals = (getattr(listing, f"{what}_refusals") or 0) + 1
    delay = min(REFUSED_RETRY_FIRST * 2 ** (refusals - 1), REFUSED_RETRY_CAP)
    setattr(listing, f"{what}_refusals", refusals)
    setattr(listing, f"{what}_error", reason[:2000])
    setattr(listing, f"{what}_retry_at", now + timedelta(seconds=delay))


def accepted_now(listing: Listing, what: str) -> None:
    """The channel took it: no reason to keep, nothing to wait for."""
    setattr(listing, f"{what}_error", None)
    setattr(listing, f"{what}_refusals", 0)
    setattr(listing, f"{what}_retry_at", None)


def _listings(session: Session, integration_id: int, skus: Iterable[str]) -> list[Listing]:
    skus = list(skus)
    if not skus:
        return []
    return list(session.execute(
        select(Listing).where(Listing.integration_id == integration_id,
                              Listing.channel_sku.in_(skus))
    ).scalars())


def fba_quantity(session: Session, product_id: int) -> int:
    """Units the channels hold for the product (FBA), shown next to local stock."""
    total = session.execute(
        select(func.coalesce(func.sum(Listing.channel_quantity), 0)).where(
            Listing.product_id == product_id, Listing.fulfillment == Fulfillment.FBA
        )
    ).scalar_one()
    return int(total)
