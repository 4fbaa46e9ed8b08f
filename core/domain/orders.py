"""The order book: upserts by (integration, channel order id), statuses and stock effects.

A status only moves forward: New → PartiallyShipped → Shipped, and Canceled from any of
them; an order never comes back from Canceled, and a late import still saying New does
not undo a local shipment or a local cancel (the channel keeps its own word in
``channel_status``). Local cancels cancel nothing on the channel.

Stock effects are derived, not remembered: after every change the order's MFN items are
reconciled with the ledger (see ``_reconcile``), each effect under a unique key, so any
repetition or interleaving of imports, cancels and shipments applies each effect once:

* ``order-item:<id>:reserve`` — the item's quantity is reserved when first seen open;
* ``order-item:<id>:ship:<n>`` — shipping up to ``n`` units consumes them (on hand and
  reservation both go down);
* ``order-item:<id>:release`` — cancelled before being (fully) shipped: the rest of the
  reservation is released, i.e. restocked into available.

FBA orders never touch local stock; an item whose SKU maps to no product has no effect
until it is mapped (``link_items``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from marketsync.core.domain import fulfillment, inventory, ledger, pii
from marketsync.core.store.models import (
    FulfillmentOrder,
    IntegrationRow,
    Listing,
    Order,
    OrderItem,
    Product,
    ShipmentRow,
    StockMovement,
)
from marketsync.core.store import integrations
from marketsync.core.store.timing import transaction_now
from marketsync.core.types import (
    PROVISIONAL_ITEM_ID,
    Address,
    Buyer,
    ChannelOrder,
    ChannelOrderItem,
    Fulfillment,
    FulfillmentRef,
    OrderStatus,
    Shipment,
    ShipmentConfirmation,
    ShipmentLine,
    TrackingInfo,
)

_RANK = {OrderStatus.NEW: 0, OrderStatus.PARTIALLY_SHIPPED: 1, OrderStatus.SHIPPED: 2}
#: MCF statuses after which there is nothing more to track
MCF_FINAL = frozenset({"complete", "completepartialled", "cancelled", "invalid", "unfulfillable"})


class UnknownOrder(LookupError):
    """No order with that id."""


class OrderStateError(ValueError):
    """The order cannot do that in its state (ship a cancelled order, ...)."""


@dataclass(slots=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    #: orders whose stock effects changed something (a push is due)
    stock_changed: int = 0
    order_ids: list[int] = field(default_factory=list)


# --- import ---------------------------------------------------------------------------------


def apply_channel_orders(
    session: Session,
    integration_id: int,
    orders: Sequence[ChannelOrder],
    *,
    cipher: pii.PiiCipher | None = None,
) -> ImportResult:
    """Upsert a page of orders and apply their stock effects, in the caller's transaction.

    Without ``cipher`` buyer data is not stored at all (never in clear).

    The page is worked in bulk: one query for its known orders, one set of lookups for
    its SKUs, one flush, and one ledger write for all its effects. An order the page
    holds twice (its status moved while the channel paged) is applied in order, each
    sighting after the one before, exactly as two pages would apply it."""
    result = ImportResult()
    for run in _runs(orders):
        _apply_run(session, integration_id, run, cipher, result)
    return result


def _runs(orders: Sequence[ChannelOrder]) -> list[list[ChannelOrder]]:
    """The page cut where an order comes again, so no run holds one order twice."""
    runs: list[list[ChannelOrder]] = [[]]
    seen: set[str] = set()
    for incoming in orders:
        if incoming.channel_order_id in seen:
            runs.append([])
            seen = set()
        seen.add(incoming.channel_order_id)
        runs[-1].append(incoming)
    return [run for run in runs if run]


def _apply_run(session: Session, integration_id: int, run: Sequence[ChannelOrder],
               cipher: pii.PiiCipher | None, result: ImportResult) -> None:
    known = _find_many(session, integration_id, [o.channel_order_id for o in run])
    mapping = _ProductMap(session, integration_id,
                          {(item.channel_sku, item.asin) for o in run for item in o.items})
    touched: list[Order] = []
    for incoming in run:
        order = known.get(incoming.channel_order_id)
        if order is None:
            order = _create(session, integration_id, incoming)
            result.created += 1
        else:
            result.updated += 1
        _merge(order, incoming)
        _store_buyer(order, incoming, cipher)
        for item in incoming.items:
            _upsert_item(order, item, mapping)
        touched.append(order)
    session.flush()
    result.stock_changed += len(_reconcile_many(session, touched))
    result.order_ids.extend(order.id for order in touched)


def _find(session: Session, integration_id: int, channel_order_id: str) -> Order | None:
    return _find_many(session, integration_id, [channel_order_id]).get(channel_order_id)


def _find_many(session: Session, integration_id: int,
               channel_order_ids: Sequence[str]) -> dict[str, Order]:
    """The stored orders among ``channel_order_ids`` with their items, locked (in id
    order) for this transaction."""
    found: dict[str, Order] = {}
    for part in ledger.chunked(sorted(set(channel_order_ids))):
        query = (select(Order).where(Order.integration_id == integration_id,
                                     Order.channel_order_id.in_(part))
                 .order_by(Order.id).options(selectinload(Order.items)).with_for_update())
        found.update((order.channel_order_id, order)
                     for order in session.execute(query).scalars())
    return found


def _create(session: Session, integration_id: int, incoming: ChannelOrder) -> Order:
    order = Order(
        integration_id=integration_id, channel_order_id=incoming.channel_order_id,
        marketplace=incoming.marketplace, status=incoming.status,
        fulfillment=incoming.fulfillment, purchased_at=incoming.purchased_at,
        pii_available=False, items=[],
    )
    if incoming.status is OrderStatus.CANCELED:
        order.canceled_by = "channel"
        order.canceled_at = transaction_now()
    session.add(order)
    return order


def _merge(order: Order, incoming: ChannelOrder) -> None:
    if (incoming.updated_at is not None and order.updated_at_channel is not None
            and incoming.updated_at < order.updated_at_channel):
        # an older sighting than the one stored (a report re-read while the search went
        # on): its status and amounts are out of date; it only fills what is missing
        order.currency = order.currency or incoming.currency
        if order.total is None and incoming.total is not None:
            order.total = incoming.total.amount
        return
    order.channel_status = incoming.channel_status
    order.updated_at_channel = incoming.updated_at
    order.currency = incoming.currency or order.currency
    if incoming.total is not None:
        order.total = incoming.total.amount
        order.currency = incoming.total.currency
    order.shipped_at = incoming.shipped_at or order.shipped_at
    order.delivered_at = incoming.delivered_at or order.delivered_at
    if order.status is not OrderStatus.CANCELED:
        if incoming.status is OrderStatus.CANCELED:
            order.status = OrderStatus.CANCELED
            order.canceled_by = "channel"
            order.canceled_at = transaction_now()
        elif _RANK[incoming.status] > _RANK[order.status]:
            order.status = incoming.status
    if order.status is OrderStatus.SHIPPED and order.shipped_at is None:
        # the channel says shipped but not when (Amazon FBA has no packages[]): the update
        # that first reported it is the best ship time there is, and starts the 30 days
        order.shipped_at = incoming.updated_at or transaction_now()
    _set_purge_date(order)


def _set_purge_date(order: Order) -> None:
    order.pii_purge_after = pii.order_purge_date(order)


def _store_buyer(order: Order, incoming: ChannelOrder, cipher: pii.PiiCipher | None) -> None:
    address = incoming.shipping_address
    if address is not None and address.country_code:
        order.ship_to_country = address.country_code
    # stored once and since purged (columns emptied), or due: never store it again
    purged = (order.pii_available and all(getattr(order, c) is None for c in pii.PII_COLUMNS)) \
        or (order.pii_purge_after is not None and order.pii_purge_after <= transaction_now())
    if cipher is None or not incoming.pii_available or purged:
        return
    def aad(column: str) -> str:
        return pii.order_aad(column, order.integration_id, order.channel_order_id)
    buyer = incoming.buyer
    if buyer is not None:
        order.buyer_name = cipher.seal_optional(buyer.name, aad("buyer_name"))
        order.buyer_email = cipher.seal_optional(buyer.email, aad("buyer_email"))
        order.buyer_phone = cipher.seal_optional(buyer.phone, aad("buyer_phone"))
    if address is not None:
        fields = {k: getattr(address, k) for k in address.__slots__ if getattr(address, k)}
        order.ship_to_address = cipher.seal(json.dumps(fields, sort_keys=True),
                                            aad("ship_to_address"))
    order.pii_available = any(getattr(order, c) is not None for c in pii.PII_COLUMNS)


def _upsert_item(order: Order, incoming, mapping: "_ProductMap") -> OrderItem:
    item = next((i for i in order.items if i.channel_item_id == incoming.channel_item_id), None)
    if item is None:
        item = _same_line(order, incoming)
    if item is None:
        item = OrderItem(channel_item_id=incoming.channel_item_id,
                         channel_sku=incoming.channel_sku, quantity=incoming.quantity,
                         quantity_shipped=0)
        order.items.append(item)
    item.asin = incoming.asin or item.asin
    item.title = incoming.title or item.title
    item.quantity_shipped = max(item.quantity_shipped or 0, incoming.quantity_shipped)
    if incoming.unit_price is not None:
        item.unit_price = incoming.unit_price.amount
        item.currency = incoming.unit_price.currency
    if incoming.tax is not None:
        item.tax = incoming.tax.amount
    if item.product_id is None:
        item.product_id = mapping.product_for(item.channel_sku, item.asin)
    return item


def _provisional(channel_item_id: str) -> bool:
    return channel_item_id.startswith(PROVISIONAL_ITEM_ID)


def _same_line(order: Order, incoming: ChannelOrderItem) -> OrderItem | None:
    """The stored line ``incoming`` is, when one side knows it by SKU only (see
    ``PROVISIONAL_ITEM_ID``): a stand-in takes the real id; a stand-in arriving for a line
    already known by its real id is that line."""
    if _provisional(incoming.channel_item_id):
        return next((i for i in order.items if i.channel_sku == incoming.channel_sku
                     and not _provisional(i.channel_item_id)), None)
    item = next((i for i in order.items if i.channel_sku == incoming.channel_sku
                 and _provisional(i.channel_item_id)), None)
    if item is not None:
        item.channel_item_id = incoming.channel_item_id
    return item


class _ProductMap:
    """Which product an item of a channel SKU belongs to: the listing's mapping; else a
    product with the same SKU; else a listing of the integration with the same ASIN.
    Looked up for a whole page at once (three queries at most, not three per item)."""

    def __init__(self, session: Session, integration_id: int,
                 wanted: set[tuple[str, str | None]]) -> None:
        self.session, self.integration_id = session, integration_id
        skus = sorted({sku for sku, _ in wanted})
        self.by_listing: dict[str, int | None] = {}
        self.by_sku: dict[str, int] = {}
        self.by_asin: dict[str, int | None] = {}
        for part in ledger.chunked(skus):
            self.by_listing.update(session.execute(
                select(Listing.channel_sku, Listing.product_id)
                .where(Listing.integration_id == integration_id,
                       Listing.channel_sku.in_(part))).all())
        unlisted = [sku for sku in skus if sku not in self.by_listing]
        for part in ledger.chunked(unlisted):
            self.by_sku.update(session.execute(
                select(Product.sku, Product.id).where(Product.sku.in_(part))).all())
        self._look_up_asins({asin for sku, asin in wanted if asin
                             and sku not in self.by_listing and sku not in self.by_sku})

    def _look_up_asins(self, asins: set[str]) -> None:
        asins = asins - self.by_asin.keys()
        for part in ledger.chunked(sorted(asins)):
            rows = self.session.execute(
                select(Listing.asin, Listing.product_id)
                .where(Listing.integration_id == self.integration_id, Listing.asin.in_(part),
                       Listing.product_id.is_not(None))
                .order_by(Listing.id)).all()
            for asin, product_id in rows:
                self.by_asin.setdefault(asin, product_id)
        for asin in asins:
            self.by_asin.setdefault(asin, None)

    def product_for(self, channel_sku: str, asin: str | None) -> int | None:
        if channel_sku in self.by_listing:
            return self.by_listing[channel_sku]
        found = self.by_sku.get(channel_sku)
        if found is None and asin:
            if asin not in self.by_asin:  # an item stored with an ASIN its sighting lacks
                self._look_up_asins({asin})
            found = self.by_asin[asin]
        return found


def link_items(session: Session, integration_id: int, channel_sku: str, product_id: int) -> int:
    """Give unmapped items of ``channel_sku`` their product and apply their effects now."""
    items = session.execute(
        select(OrderItem).join(Order).where(Order.integration_id == integration_id,
                                            OrderItem.channel_sku == channel_sku,
                                            OrderItem.product_id.is_(None))
    ).scalars().all()
    if not items:
        return 0
    for item in items:
        item.product_id = product_id
    session.flush()
    order_ids = sorted({item.order_id for item in items})
    linked: list[Order] = []
    for part in ledger.chunked(order_ids):
        linked.extend(session.execute(
            select(Order).where(Order.id.in_(part)).order_by(Order.id)
            .options(selectinload(Order.items))).scalars())
    _reconcile_many(session, linked)
    return len(items)


# --- stock effects ------------------------------------------------------------------------------

#: an item of at most this many units has its effects looked up by their keys (the
#: ledger's unique index); a larger one by its item id (a scan, for rare bulk orders)
KEYED_LOOKUP_UNITS = 64


def _reconcile(session: Session, order: Order) -> bool:
    """Bring the ledger in line with the order's state; True when something was applied."""
    return bool(_reconcile_many(session, [order]))


def _reconcile_many(session: Session, orders: Sequence[Order]) -> set[int]:
    """Bring the ledger in line with each order's state, for all of them at once.

    Each effect is computed from the order's state and what its item already has in
    the ledger, as ``_item_effects`` says; then every effect goes in one ledger write,
    openings are raised once per product, and each product's listings learn their new
    wish once. Returns the ids of the orders whose effects changed something."""
    work = [(order, item) for order in orders if order.fulfillment is not Fulfillment.FBA
            for item in order.items if item.product_id is not None]
    if not work:
        return set()
    applied = _applied(session, [item for _, item in work])
    snapshots = inventory.latest_snapshots(session, {item.product_id for _, item in work})
    movements: list[ledger.Movement] = []
    owner: dict[str, int] = {}
    openings: set[int] = set()
    for order, item in work:
        found = applied.get(item.id, {})
        latest = snapshots.get(item.product_id)
        due = (f"order-item:{item.id}:reserve" not in found
               and order.status is not OrderStatus.CANCELED
               and order.purchased_at is not None and latest is not None
               and latest > order.purchased_at)
        if due:
            # an order older than a listing's snapshot: its units were missing from that
            # channel quantity, so the opening stock grows with the reservation
            openings.add(item.product_id)
        for movement in _item_effects(order, item, found):
            movements.append(movement)
            owner[movement.key] = order.id
    inserted, moved = ledger.apply_movements(session, movements)
    # the openings before any wish: no push in between asks for a quantity that the
    # opening is about to justify
    inventory.reconcile_openings(session, openings, refresh=False)
    refresh = {product.id: product for product in moved}
    refresh.update((product_id, session.get(Product, product_id)) for product_id in openings)
    inventory.refresh_wanted_many(session, [refresh[key] for key in sorted(refresh)])
    return {owner[key] for key in inserted}


def _applied(session: Session, items: Sequence[OrderItem]) -> dict[int, dict[str, int]]:
    """item id -> {key: on-hand delta} of the effects the ledger holds for it."""
    keys: dict[str, int] = {}
    large: list[int] = []
    for item in items:
        if item.quantity > KEYED_LOOKUP_UNITS:
            large.append(item.id)
            continue
        base = f"order-item:{item.id}"
        keys[f"{base}:reserve"] = keys[f"{base}:release"] = item.id
        for shipped in range(1, item.quantity + 1):
            keys[f"{base}:ship:{shipped}"] = item.id
    applied: dict[int, dict[str, int]] = {}
    for key, delta in ledger.deltas_by_key(session, keys).items():
        applied.setdefault(keys[key], {})[key] = delta
    for part in ledger.chunked(large):
        rows = session.execute(
            select(StockMovement.order_item_id, StockMovement.key, StockMovement.delta_on_hand)
            .where(StockMovement.order_item_id.in_(part))).all()
        for item_id, key, delta in rows:
            applied.setdefault(item_id, {})[key] = delta
    return applied


def _item_effects(order: Order, item: OrderItem, applied: dict[str, int]
                  ) -> list[ledger.Movement]:
    """The effects the item's state asks for beyond those ``applied`` already:

    * reserved when first seen open (an order first seen cancelled never was open while
      we knew it: nothing to reserve or restock);
    * shipped units consumed up to what the status says (``ship:<n>``: n units in all);
    * cancelled before being (fully) shipped: the rest of the reservation released."""
    base = f"order-item:{item.id}"
    common = {"product_id": item.product_id, "integration_id": order.integration_id,
              "order_id": order.id, "order_item_id": item.id}
    effects: list[ledger.Movement] = []
    if f"{base}:reserve" not in applied:
        if order.status is OrderStatus.CANCELED:
            return effects
        effects.append(ledger.Movement(key=f"{base}:reserve", reason="reserve",
                                       reserved=item.quantity, **common))
    shipped = -sum(delta for key, delta in applied.items() if key.startswith(f"{base}:ship:"))
    if order.status is OrderStatus.SHIPPED:
        target = item.quantity
    elif order.status is OrderStatus.PARTIALLY_SHIPPED:
        target = min(item.quantity_shipped, item.quantity)
    else:
        target = shipped  # New ships nothing; Canceled ships nothing more
    if target > shipped:
        effects.append(ledger.Movement(key=f"{base}:ship:{target}", reason="ship",
                                       on_hand=-(target - shipped),
                                       reserved=-(target - shipped), **common))
        shipped = target
    remaining = item.quantity - shipped
    if order.status is OrderStatus.CANCELED and remaining > 0:
        effects.append(ledger.Movement(key=f"{base}:release", reason="release",
                                       reserved=-remaining, **common))
    return effects


# --- local actions --------------------------------------------------------------------------------


def get_order(session: Session, order_id: int, *, lock: bool = False) -> Order:
    query = select(Order).where(Order.id == order_id)
    if lock:
        query = query.with_for_update()
    order = session.execute(query).scalar_one_or_none()
    if order is None:
        raise UnknownOrder(f"unknown order {order_id} (see `marketsync orders list`)")
    return order


def cancel_locally(session: Session, order_id: int) -> bool:
    """Cancel here only: New → restocked; Shipped → nothing restocked; the channel is not
    told. Returns False when the order was already cancelled."""
    order = get_order(session, order_id, lock=True)
    if order.status is OrderStatus.CANCELED:
        return False
    order.status = OrderStatus.CANCELED
    order.canceled_by = "local"
    order.canceled_at = transaction_now()
    _set_purge_date(order)
    _reconcile(session, order)
    return True


def ship_order(
    session: Session,
    order_id: int,
    *,
    carrier: str,
    tracking_number: str,
    lines: Sequence[ShipmentLine] = (),
    ship_method: str | None = None,
    shipped_at: datetime | None = None,
) -> str:
    """Record a shipment (all of the order, or ``lines``) that the ``confirm_shipment`` job
    confirms on the channel; consumes the shipped stock. The same carrier and tracking
    number again is the same shipment. Returns the shipment's key."""
    if not carrier.strip() or not tracking_number.strip():
        raise ValueError("a shipment needs a carrier and a tracking number")
    order = get_order(session, order_id, lock=True)
    key = f"shipment:{order.id}:{carrier.strip()}:{tracking_number.strip()}"
    if session.execute(select(ShipmentRow.id).where(ShipmentRow.key == key)).scalar():
        return key
    corrected = session.execute(select(ShipmentRow.key).where(  # a corrected one keeps its key
        ShipmentRow.order_id == order.id, ShipmentRow.carrier == carrier.strip(),
        ShipmentRow.tracking_number == tracking_number.strip())).scalar()
    if corrected is not None:
        return corrected
    if order.status is OrderStatus.CANCELED:
        raise OrderStateError(f"order {order.id} is cancelled and cannot be shipped")
    if order.fulfillment is Fulfillment.FBA:
        raise OrderStateError(f"order {order.id} is fulfilled by the channel (FBA)")
    by_id = {item.channel_item_id: item for item in order.items}
    for line in lines:
        item = by_id.get(line.channel_item_id)
        if item is None:
            raise ValueError(f"order {order.id} has no item {line.channel_item_id!r}")
        if line.quantity <= 0 or item.quantity_shipped + line.quantity > item.quantity:
            raise ValueError(f"cannot ship {line.quantity} of item {line.channel_item_id!r}: "
                             f"{item.quantity - item.quantity_shipped} left to ship")
    now = transaction_now()
    if not lines:  # the rest of the order; channels want the lines spelt out
        lines = [ShipmentLine(channel_item_id=item.channel_item_id,
                              quantity=item.quantity - item.quantity_shipped)
                 for item in order.items if item.quantity > item.quantity_shipped]
        if not lines:
            raise OrderStateError(f"order {order.id} has nothing left to ship")
    for line in lines:
        by_id[line.channel_item_id].quantity_shipped += line.quantity
    done = all(item.quantity_shipped >= item.quantity for item in order.items)
    order.status = OrderStatus.SHIPPED if done else OrderStatus.PARTIALLY_SHIPPED
    order.shipped_at = shipped_at or now
    _set_purge_date(order)
    session.add(ShipmentRow(
        key=key, order_id=order.id, carrier=carrier.strip(),
        tracking_number=tracking_number.strip(), ship_method=ship_method,
        shipped_at=shipped_at or now, confirm_state="pending", attempts=0,
        lines=[{"channel_item_id": line.channel_item_id, "quantity": line.quantity}
               for line in lines],
    ))
    session.flush()
    _reconcile(session, order)
    return key


@dataclass(frozen=True, slots=True)
class PendingShipment:
    integration_id: int
    shipment: Shipment
    attempts: int


def pending_shipments(session: Session, integration_id: int | None = None,
                      limit: int = 100) -> list[PendingShipment]:
    """Shipments still to confirm (also ``confirming`` ones a crash interrupted: the
    plugin's confirmation is idempotent by key)."""
    query = (select(ShipmentRow, Order)
             .join(Order, Order.id == ShipmentRow.order_id)
             .where(ShipmentRow.confirm_state.in_(("pending", "confirming")))
             .order_by(ShipmentRow.id).limit(limit))
    if integration_id is not None:
        query = query.where(Order.integration_id == integration_id)
    return [
        PendingShipment(order.integration_id, Shipment(
            key=row.key, channel_order_id=order.channel_order_id,
            marketplace=order.marketplace, carrier=row.carrier,
            tracking_number=row.tracking_number, shipped_at=row.shipped_at,
            ship_method=row.ship_method,
            lines=_lines(row, order),
        ), row.attempts)
        for row, order in session.execute(query)
    ]


def _lines(row: ShipmentRow, order: Order) -> tuple[ShipmentLine, ...]:
    """The shipment's lines; a row without any (the whole order) gets every item."""
    if row.lines:
        return tuple(ShipmentLine(channel_item_id=line["channel_item_id"],
                                  quantity=int(line["quantity"])) for line in row.lines)
    return tuple(ShipmentLine(channel_item_id=item.channel_item_id, quantity=item.quantity)
                 for item in order.items)


def _shipment(session: Session, key: str) -> ShipmentRow:
    row = session.execute(select(ShipmentRow).where(ShipmentRow.key == key)).scalar_one_or_none()
    if row is None:
        raise LookupError(f"unknown shipment {key!r}")
    return row


def mark_shipment_confirmed(session: Session, key: str,
                            confirmation: ShipmentConfirmation | None = None,
                            sent: Shipment | None = None) -> bool:
    """Record the channel's answer. One saying neither ``confirmed`` nor
    ``already_confirmed`` is a failed attempt: the shipment stays pending. So does one for
    a carrier or tracking number (``sent``) that a correction has replaced meanwhile: the
    corrected one is still to be told. Returns whether the shipment is confirmed now."""
    row = _shipment(session, key)
    row.attempts += 1
    if sent is not None and (sent.carrier, sent.tracking_number) != (row.carrier,
                                                                     row.tracking_number):
        return False
    if confirmation is not None and not (confirmation.confirmed
                                         or confirmation.already_confirmed):
        row.last_error = (confirmation.message or "the channel did not confirm")[:2000]
        return row.confirm_state == "confirmed"
    if row.confirm_state != "confirmed":
        row.confirm_state = "confirmed"
        row.confirmed_at = transaction_now()
    row.last_error = None
    return True


def mark_shipment_failed(session: Session, key: str, message: str, *, final: bool,
                         sent: Shipment | None = None) -> None:
    """A failed attempt: retried later, or (``final``: the channel refused it for good)
    left ``failed`` for the seller to look at — unless a correction replaced what was
    ``sent`` meanwhile: the corrected shipment is still to be tried."""
    row = _shipment(session, key)
    row.attempts += 1
    row.last_error = message[:2000]
    stale = sent is not None and (sent.carrier, sent.tracking_number) != (row.carrier,
                                                                          row.tracking_number)
    if final and not stale and row.confirm_state != "confirmed":
        row.confirm_state = "failed"


# --- multi-channel fulfilment ----------------------------------------------------------------------


def fulfill_mcf(session: Session, order_id: int, integration_id: int) -> str:
    """Have the order fulfilled by the channel's network (Amazon MCF) of ``integration_id``.

    The units leave the channel's warehouse, not ours: the local reservation is released
    and the order counts as channel-fulfilled from now on. Returns the seller fulfilment
    order id (the same on a repeated call)."""
    order = get_order(session, order_id, lock=True)
    reference = f"ms-{order.id}"
    if session.execute(select(FulfillmentOrder.id).where(
            FulfillmentOrder.seller_fulfillment_order_id == reference)).scalar():
        return reference
    if order.status is not OrderStatus.NEW:
        raise OrderStateError(f"order {order.id} is {order.status.value}; only New orders "
                              "can be fulfilled by MCF")
    order.status = OrderStatus.CANCELED  # releases the reservation ...
    _reconcile(session, order)
    order.status = OrderStatus.NEW  # ... and the order itself stays open
    order.fulfillment = Fulfillment.FBA
    session.add(FulfillmentOrder(integration_id=integration_id, order_id=order.id,
                                 seller_fulfillment_order_id=reference, open=True,
                                 tracking_numbers=[]))
    session.flush()
    return reference


def open_fulfillments(session: Session, integration_id: int) -> list[FulfillmentRef]:
    rows = session.execute(
        select(FulfillmentOrder, Order.marketplace)
        .outerjoin(Order, Order.id == FulfillmentOrder.order_id)
        .where(FulfillmentOrder.integration_id == integration_id,
               FulfillmentOrder.open.is_(True)).order_by(FulfillmentOrder.id)
    ).all()
    marketplace = session.execute(
        select(IntegrationRow.marketplace).where(IntegrationRow.id == integration_id)
    ).scalar_one()
    return [FulfillmentRef(fulfillment_order_id=row.seller_fulfillment_order_id,
                           marketplace=marketplace) for row, _ in rows]


def apply_tracking(session: Session, integration_id: int,
                   infos: Sequence[TrackingInfo]) -> set[int]:
    """Record MCF progress; a shipped one ships its order (and becomes a shipment for the
    channel the order came from), a finished one stops tracking. Returns the integrations
    that now have a shipment to confirm."""
    to_confirm: set[int] = set()
    for info in infos:
        row = session.execute(select(FulfillmentOrder).where(
            FulfillmentOrder.integration_id == integration_id,
            FulfillmentOrder.seller_fulfillment_order_id == info.fulfillment_order_id,
        )).scalar_one_or_none()
        if row is None:
            continue
        row.status = info.status
        numbers = [p.tracking_number for p in info.packages]
        row.tracking_numbers = numbers
        if info.packages:
            row.carrier = info.packages[0].carrier
        row.open = info.status.replace("_", "").lower() not in MCF_FINAL
        order = session.get(Order, row.order_id) if row.order_id else None
        if order is None or order.status is OrderStatus.CANCELED:
            continue
        shipped = [p.shipped_at for p in info.packages if p.shipped_at]
        delivered = [p.delivered_at for p in info.packages if p.delivered_at]
        if shipped:
            order.status = OrderStatus.SHIPPED
            order.shipped_at = order.shipped_at or min(shipped)
            first = next(p for p in info.packages if p.shipped_at)
            origin = fulfillment.shipment_for_origin(session, row, order, first)
            if origin is not None:
                to_confirm.add(origin)
        if delivered and len(delivered) == len(info.packages):
            order.delivered_at = max(delivered)
        _set_purge_date(order)
    return to_confirm


# --- the built-in manual channel ----------------------------------------------------------------

MANUAL_ALIAS = "manual"


def manual_integration_id(session: Session) -> int:
    """The built-in ``manual`` integration (created on first use): orders typed in or
    imported from CSV, no remote side."""
    found = session.execute(select(IntegrationRow.id).where(
        IntegrationRow.alias == MANUAL_ALIAS)).scalar()
    if found is not None:
        return found
    return integrations.ensure_integration(session, alias=MANUAL_ALIAS, channel="manual",
                                           account="manual", marketplace="LOCAL")


def add_manual_order(
    session: Session,
    channel_order_id: str,
    items: Sequence[tuple[str, int]],
    *,
    buyer: Buyer | None = None,
    address: Address | None = None,
    cipher: pii.PiiCipher | None = None,
) -> int:
    """Enter an order by hand (items are master SKUs and quantities); it reserves stock
    like any merchant-fulfilled order. The same order id again changes nothing."""
    if not channel_order_id.strip():
        raise ValueError("a manual order needs an order id")
    if not items:
        raise ValueError(f"manual order {channel_order_id!r} has no items")
    for sku, quantity in items:
        inventory.product_by_sku(session, sku)
        if quantity <= 0:
            raise ValueError(f"quantity of {sku!r} must be above zero, not {quantity}")
    if (buyer is not None or address is not None) and cipher is None:
        raise ValueError(f"manual order {channel_order_id!r}: buyer data is stored only "
                         "encrypted; configure pii.key (or set MARKETSYNC_PII_KEY)")
    integration = manual_integration_id(session)
    now = transaction_now()
    order = ChannelOrder(
        channel_order_id=channel_order_id.strip(), marketplace="LOCAL",
        status=OrderStatus.NEW, channel_status="Manual", fulfillment=Fulfillment.MFN,
        purchased_at=now, updated_at=now, buyer=buyer, shipping_address=address,
        pii_available=buyer is not None or address is not None,
        items=tuple(ChannelOrderItem(channel_item_id=str(n), channel_sku=sku,
                                     quantity=quantity)
                    for n, (sku, quantity) in enumerate(items, 1)),
    )
    existing = _find(session, integration, order.channel_order_id)
    if existing is not None:
        return existing.id
    return apply_channel_orders(session, integration, [order], cipher=cipher).order_ids[0]


# --- reporting ---------------------------------------------------------------------------------


def usage(session: Session, month: str) -> list[tuple[str, float]]:
    """Orders per integration purchased in ``month`` (YYYY-MM); FBA orders count 0.5."""
    start, end = month_bounds(month)
    rows = session.execute(
        select(IntegrationRow.alias, Order.fulfillment, func.count(Order.id))
        .join(Order, Order.integration_id == IntegrationRow.id)
        .where(Order.purchased_at >= start, Order.purchased_at < end)
        .group_by(IntegrationRow.alias, Order.fulfillment)
    ).all()
    totals: dict[str, float] = {}
    for alias, fulfillment, count in rows:
        weight = 0.5 if fulfillment is Fulfillment.FBA else 1.0
        totals[alias] = totals.get(alias, 0.0) + weight * count
    return sorted(totals.items())


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"month {month!r} is not YYYY-MM") from None
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, end
