"""Products (the seller's master SKUs) and listings (a product on one integration).

Mapping a channel listing to a product happens once, when the listing is first seen:
same SKU first, then a product or another channel's listing with the same ASIN, then the
same EAN (a UPC arrives as its 13-digit GTIN, so it matches here too), then the same MPN;
failing all of them the listing creates its product. An MPN is only unique per
manufacturer, so when it names two or more products the listing is left **unmapped** and
a warning names the candidates: no guess, ``products map`` decides (``products list``
shows it as "(unmapped)"). Later imports never remap, so ``products unmap`` sticks and
``products map`` is the only way to change a mapping.

A product first seen on a merchant-fulfilled listing opens with the stock the channel
justifies: its quantity plus the units its open orders hold (``inventory.reconcile_opening``,
whichever of the listing and the orders arrives first), so connecting a shop never pushes
a difference we invented.
Nothing here deletes rows: a listing gone from the channel is marked off-channel, a
product deleted locally comes back with the next import that still lists it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from marketsync.core.domain import inventory, orders
from marketsync.core.domain.listing_identity import identify
from marketsync.core.store import submissions
from marketsync.core.store.models import IntegrationRow, Listing, Product, SubmissionRow
from marketsync.core.store.timing import transaction_now
from marketsync.core.types import (
    ChannelListing,
    ChannelStock,
    Fulfillment,
    ItemResult,
    Money,
    PriceUpdate,
    Submission,
    SubmissionReport,
)

log = logging.getLogger(__name__)

DELETED_STATUSES = frozenset({"deleted", "removed", "inactive_deleted"})


class UnknownListing(LookupError):
    """No listing of that SKU on that integration."""


class UnknownIntegrationAlias(LookupError):
    """No integration with that alias."""


def integration_id(session: Session, alias: str) -> int:
    found = session.execute(
        select(IntegrationRow.id).where(IntegrationRow.alias == alias)
    ).scalar_one_or_none()
    if found is None:
        raise UnknownIntegrationAlias(f"unknown integration {alias!r} (see `marketsync status`)")
    return found


# --- importing listings -------------------------------------------------------------------------


def apply_channel_listings(
    session: Session,
    integration_id: int,
    listings: Sequence[ChannelListing],
    complete: bool = False,
    *,
    snapshot_started: datetime | None = None,
    snapshot_at: datetime | None = None,
) -> dict[str, int]:
    """Upsert the integration's listings as the channel reports them.

    ``complete`` says the channel's snapshot is whole: listings not seen since
    ``snapshot_started`` (or, without it, not in ``listings``) are marked off-channel.
    ``snapshot_at`` is when the channel's quantities were read (default: now); a new
    MFN listing's opening stock counts the orders purchased before it.
    Returns counts: created, updated, renamed, off_channel, opened (products whose
    opening stock moved), ambiguous (created unmapped: their MPN names several products).
    """
    now = transaction_now()
    counts = {"created": 0, "updated": 0, "renamed": 0, "off_channel": 0, "opened": 0,
              "ambiguous": 0}
    seen: set[str] = set()
    in_page = {channel.channel_sku for channel in listings}
    known: _KnownListings | None = None  # the integration's listings, loaded on first need
    for channel in listings:
        seen.add(channel.channel_sku)
        listing = _listing(session, integration_id, channel.channel_sku)
        if listing is None:
            if known is None:
                known = _KnownListings(session.execute(
                    select(Listing).where(Listing.integration_id == integration_id)).scalars())
            match = identify(known.candidates(channel), channel, present_skus=in_page,
                             complete=complete)
            if match is not None and match.renamed:
                listing = match.listing
                log.info("integration %s: listing %s is now shown as %s (same %s); its "
                         "product, stock history and orders stay with it", integration_id,
                         listing.channel_sku, channel.channel_sku, match.by)
                listing.channel_sku = channel.channel_sku
                counts["renamed"] += 1
            else:
                listing = new_listing(session, integration_id, channel.channel_sku,
                                      fulfillment=channel.fulfillment, asin=channel.asin,
                                      ean=channel.ean, mpn=channel.mpn, title=channel.title,
                                      quantity=channel.quantity, snapshot_at=snapshot_at)
                counts["created"] += 1
                counts["ambiguous"] += listing.product_id is None
                counts["opened"] += bool(listing.opening_at is not None)
        else:
            counts["updated"] += 1
        _update_from_channel(session, listing, channel, now)
        if known is not None:
            known.add(listing)  # under its SKU, id and ASIN as they are now
    if complete:
        query = select(Listing).where(Listing.integration_id == integration_id,
                                      Listing.on_channel.is_(True))
        for listing in session.execute(query).scalars():
            stale = (listing.updated_at < snapshot_started if snapshot_started
                     else listing.channel_sku not in seen)
            if stale and listing.channel_sku not in seen:
                _off_channel(listing, now)
                counts["off_channel"] += 1
    return counts


class _KnownListings:
    """The integration's listings, indexed by the three keys ``identify`` matches on.

    A first import of 10,000 SKUs meets 10,000 unknown listings; giving ``identify`` the
    whole list each time made that import quadratic (minutes of CPU at 10,000, hours at
    100,000). Each rule only looks at listings sharing the incoming SKU, listing id or
    ASIN, so those are all it is handed, in the order the list had. A listing is indexed
    again whenever it may have changed; a stale entry is harmless, since ``identify``
    compares the current values.
    """

    def __init__(self, listings: Iterable[Listing]) -> None:
        self._order: dict[int, int] = {}  # id(listing) -> position in the full list
        self._keys: dict[tuple[str, str], list[Listing]] = {}
        for listing in listings:
            self.add(listing)

    def add(self, listing: Listing) -> None:
        self._order.setdefault(id(listing), len(self._order))
        for key in (("sku", listing.channel_sku), ("id", listing.listing_id),
                    ("asin", listing.asin)):
            if key[1]:
                bucket = self._keys.setdefault(key, [])
                if not any(other is listing for other in bucket):
                    bucket.append(listing)

    def candidates(self, incoming: ChannelListing) -> list[Listing]:
        found: dict[int, Listing] = {}
        for key in (("sku", incoming.channel_sku), ("id", incoming.listing_id),
                    ("asin", incoming.asin)):
            if key[1]:
                for listing in self._keys.get(key, ()):
                    found[id(listing)] = listing
        return sorted(found.values(), key=lambda listing: self._order[id(listing)])


def _update_from_channel(session: Session, listing: Listing, channel: ChannelListing,
                         now: datetime) -> None:
    listing.asin = channel.asin or listing.asin
    listing.ean = channel.ean or listing.ean
    listing.mpn = clean_mpn(channel.mpn) or listing.mpn
    listing.listing_id = channel.listing_id or listing.listing_id
    listing.title = channel.title or listing.title
    listing.channel_status = channel.status
    listing.updated_at = now  # "seen" stamp for complete snapshots
    if channel.status.lower() in DELETED_STATUSES:
        _off_channel(listing, now)
        return
    listing.on_channel = True
    listing.removed_at = None
    if listing.fulfillment != channel.fulfillment:
        listing.fulfillment = channel.fulfillment
    if channel.price is not None:
        _price_from_channel(listing, channel.price)
    if listing.product_id is not None:
        product = session.get(Product, listing.product_id)
        if product is not None and product.deleted_at is not None:
            product.deleted_at = None  # deleted locally, still listed: it comes back
    if channel.fulfillment is Fulfillment.FBA:
        if channel.quantity is not None:
            listing.channel_quantity = listing.acknowledged_quantity = channel.quantity
        listing.wanted_quantity = None
        return
    if channel.quantity is not None and listing.push_generation <= listing.pushed_generation:
        # nothing of ours in flight: what the channel shows is what it has
        listing.channel_quantity = listing.acknowledged_quantity = channel.quantity
    if listing.product_id is not None:
        product = session.get(Product, listing.product_id)
        if product is not None:
            inventory.want(listing, max(product.on_hand - product.reserved, 0),
                           product.handling_time_days)


def _price_from_channel(listing: Listing, price: Money) -> None:
    """A price edited on the channel comes back, unless a local price is still on its way."""
    listing.price = price.amount
    listing.currency = price.currency
    local_pending = (listing.wanted_price is not None
                     and listing.wanted_price != listing.acknowledged_price)
    if not local_pending:
        listing.acknowledged_price = price.amount
        listing.wanted_price = None


def _off_channel(listing: Listing, now: datetime) -> None:
    listing.on_channel = False
    if listing.removed_at is None:
        listing.removed_at = now


def _listing(session: Session, integration_id: int, channel_sku: str) -> Listing | None:
    return session.execute(
        select(Listing).where(Listing.integration_id == integration_id,
                              Listing.channel_sku == channel_sku)
    ).scalar_one_or_none()


def new_listing(
    session: Session,
    integration_id: int,
    channel_sku: str,
    *,
    fulfillment: Fulfillment = Fulfillment.MFN,
    asin: str | None = None,
    ean: str | None = None,
    mpn: str | None = None,
    title: str | None = None,
    quantity: int | None = None,
    snapshot_at: datetime | None = None,
) -> Listing:
    """Create a listing and map it automatically (see the module doc). An MFN listing
    with a quantity remembers it and ``snapshot_at`` as its opening (see
    ``inventory.reconcile_opening``). A listing whose MPN names several products is
    created unmapped."""
    mpn = clean_mpn(mpn)
    try:
        product = find_match(session, channel_sku, asin=asin, ean=ean, mpn=mpn)
    except AmbiguousMatch as ambiguous:
        log.warning("integration %s: listing %s left unmapped: %s; map it with `marketsync "
                    "products map`", integration_id, channel_sku, ambiguous)
        listing = Listing(
            integration_id=integration_id, channel_sku=channel_sku, product_id=None,
            asin=asin, ean=ean, mpn=mpn, title=title, fulfillment=fulfillment,
            on_channel=True, push_generation=0, pushed_generation=0,
            channel_quantity=quantity, acknowledged_quantity=quantity)
        session.add(listing)
        session.flush()
        return listing
    if product is None:
        product = inventory.ensure_product(session, channel_sku, title=title, asin=asin, ean=ean,
                                           mpn=mpn)
    opening = fulfillment is Fulfillment.MFN and quantity is not None
    listing = Listing(
        integration_id=integration_id, channel_sku=channel_sku, product_id=product.id,
        asin=asin, ean=ean, mpn=mpn, title=title, fulfillment=fulfillment, on_channel=True,
        push_generation=0, pushed_generation=0, channel_quantity=quantity,
        acknowledged_quantity=quantity,
        opening_quantity=quantity if opening else None,
        opening_at=(snapshot_at or transaction_now()) if opening else None,
    )
    session.add(listing)
    session.flush()
    orders.link_items(session, integration_id, channel_sku, product.id)
    if opening:
        inventory.reconcile_opening(session, product.id)
    return listing


class AmbiguousMatch(LookupError):
    """An identifier (an MPN) names more than one product: the listing is not guessed."""


#: what sellers put in eBay's MPN aspect when the item has none: not a part number
MPN_PLACEHOLDERS = frozenset({"does not apply", "does not apply.", "n/a", "na", "none",
                              "not applicable", "unbranded", "-"})
MPN_LIMIT = 70  #: eBay's longest MPN (65) with room; the column's width


def clean_mpn(value: str | None) -> str | None:
    """The MPN to store and match: stripped; None for placeholders and absurd lengths."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or value.casefold() in MPN_PLACEHOLDERS or len(value) > MPN_LIMIT:
        return None
    return value


def find_match(session: Session, sku: str, *, asin: str | None = None,
               ean: str | None = None, mpn: str | None = None) -> Product | None:
    """The product a new listing belongs to: same SKU, then same ASIN, then same EAN
    (on the product itself or on another mapped listing), then same MPN. Raises
    ``AmbiguousMatch`` when the MPN, the first identifier that matches, names several
    products."""
    product = session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if product is not None:
        return product
    for column, product_column, value in ((Listing.asin, Product.asin, asin),
                                          (Listing.ean, Product.ean, ean)):
        if not value:
            continue
        product = session.execute(
            select(Product).where(product_column == value).order_by(Product.id).limit(1)
        ).scalar_one_or_none()
        if product is not None:
            return product
        product_id = session.execute(
            select(Listing.product_id).where(column == value, Listing.product_id.is_not(None))
            .order_by(Listing.id).limit(1)
        ).scalar_one_or_none()
        if product_id is not None:
            return session.get(Product, product_id)
    return _by_mpn(session, clean_mpn(mpn))


def _by_mpn(session: Session, mpn: str | None) -> Product | None:
    if mpn is None:
        return None
    candidates = set(session.execute(
        select(Product.id).where(Product.mpn == mpn).limit(10)).scalars())
    candidates.update(session.execute(
        select(Listing.product_id).where(Listing.mpn == mpn, Listing.product_id.is_not(None))
        .distinct().limit(10)).scalars())
    if len(candidates) > 1:
        skus = session.execute(select(Product.sku).where(Product.id.in_(candidates))
                               .order_by(Product.sku)).scalars().all()
        raise AmbiguousMatch(f"MPN {mpn!r} belongs to {len(skus)} products "
                             f"({', '.join(repr(s) for s in skus[:5])})")
    return session.get(Product, candidates.pop()) if candidates else None


# --- by hand ---------------------------------------------------------------------------------------


def map_listing(session: Session, integration_id: int, channel_sku: str, sku: str) -> None:
    """Map a listing to product ``sku`` by hand, replacing whatever mapping it had."""
    product = inventory.product_by_sku(session, sku)
    listing = _require_listing(session, integration_id, channel_sku)
    listing.product_id = product.id
    if listing.fulfillment is Fulfillment.MFN:
        inventory.want(listing, max(product.on_hand - product.reserved, 0),
                       product.handling_time_days)
    orders.link_items(session, integration_id, channel_sku, product.id)


def unmap_listing(session: Session, integration_id: int, channel_sku: str) -> None:
    """Detach a listing from its product; it is no longer pushed and later imports leave it
    unmapped. Order items already linked keep their product (their stock effects stand)."""
    listing = _require_listing(session, integration_id, channel_sku)
    listing.product_id = None
    listing.wanted_quantity = None


def _require_listing(session: Session, integration_id: int, channel_sku: str) -> Listing:
    listing = _listing(session, integration_id, channel_sku)
    if listing is None:
        raise UnknownListing(
            f"integration {integration_id} has no listing {channel_sku!r} "
            "(see `marketsync products list`)")
    return listing


def add_product(session: Session, sku: str, *, title: str | None = None,
                ean: str | None = None, mpn: str | None = None) -> bool:
    """Create a product by hand (a shop without an API has no import to create it);
    one deleted locally is restored, and gets an EAN or MPN it lacked. Returns False when
    it existed already."""
    sku = sku.strip()
    if not sku or len(sku) > 200:
        raise ValueError(f"SKU {sku!r} must be 1 to 200 characters")
    if mpn is not None and clean_mpn(mpn) is None:
        raise ValueError(f"MPN {mpn!r} of {sku!r} is not a part number (empty, a placeholder "
                         f"such as 'Does not apply', or over {MPN_LIMIT} characters)")
    mpn = clean_mpn(mpn)
    existing = session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if existing is not None:
        restored = existing.deleted_at is not None
        existing.deleted_at = None
        if mpn and existing.mpn and existing.mpn != mpn:
            raise ValueError(f"product {sku!r} has MPN {existing.mpn!r} already, not {mpn!r}")
        existing.ean = existing.ean or ean
        existing.mpn = existing.mpn or mpn
        return restored
    inventory.ensure_product(session, sku, title=title, ean=ean, mpn=mpn)
    return True


def delete_product(session: Session, sku: str) -> None:
    """Delete locally: hidden here, nothing changes on any channel."""
    inventory.product_by_sku(session, sku).deleted_at = transaction_now()


def set_handling_time(session: Session, sku: str, days: int | None) -> None:
    """Override the integration's default handling time for one product (None: default)."""
    if days is not None and not 0 <= days <= 30:
        raise ValueError(f"handling time of {sku!r} must be 0 to 30 days, not {days}")
    product = inventory.product_by_sku(session, sku, lock=True)
    product.handling_time_days = days
    inventory.refresh_wanted(session, product)


def set_price(session: Session, sku: str, amount: Decimal, integration_id: int) -> int:
    """Set the price of product ``sku`` on one integration; it is pushed (push_prices).
    Returns how many listings will be pushed."""
    if amount <= 0:
        raise ValueError(f"price of {sku!r} must be above zero, not {amount}")
    product = inventory.product_by_sku(session, sku)
    listings = list(session.execute(
        select(Listing).where(Listing.product_id == product.id,
                              Listing.integration_id == integration_id)
    ).scalars())
    if not listings:
        raise UnknownListing(f"product {sku!r} has no listing on integration {integration_id}")
    for listing in listings:
        listing.wanted_price = amount.quantize(Decimal("0.01"))
        if inventory.carries_price(listing):
            # goes out with the stock push, in the same message as quantity and handling
            listing.push_generation = (listing.push_generation or 0) + 1
    return len(listings)


# --- price pushes --------------------------------------------------------------------------------


def pending_price_updates(session: Session, integration_id: int,
                          limit: int | None = None) -> list[PriceUpdate]:
    busy: set[str] = set()
    for stored in submissions.in_flight(session, integration_id):
        if stored.kind == "prices":
            busy.update(stored.channel_skus)
    query = select(Listing).where(
        Listing.integration_id == integration_id, Listing.on_channel.is_(True),
        Listing.wanted_price.is_not(None),
        or_(Listing.price_retry_at.is_(None), Listing.price_retry_at <= transaction_now()),
    ).order_by(Listing.id)
    updates = []
    for listing in session.execute(query).scalars():
        if listing.wanted_price == listing.acknowledged_price or listing.channel_sku in busy:
            continue
        if inventory.carries_price(listing):
            continue  # rides with the listing's stock push (inventory.pending_stock_updates)
        currency = listing.currency or inventory.integration_currency(session, integration_id)
        updates.append(PriceUpdate(channel_sku=listing.channel_sku,
                                   price=Money(amount=listing.wanted_price, currency=currency)))
        if limit is not None and len(updates) >= limit:
            break
    return updates


def record_price_push(session: Session, integration_id: int, updates: Sequence[PriceUpdate],
                      submission: Submission) -> int:
    submission_id = submissions.record(session, integration_id, submission)
    row = session.get(SubmissionRow, submission_id)
    assert row is not None
    row.payload = {**row.payload,
                   "prices": {u.channel_sku: str(u.price.amount) for u in updates}}
    if submission.results and submission.poll_after <= 0:
        submissions.apply_report(session, submission_id,
                                 SubmissionReport(done=True, results=submission.results))
        apply_price_results(session, submission_id, submission.results)
    return submission_id


def apply_submission_results(session: Session, submission_id: int,
                             results: Sequence[ItemResult] | None = None) -> list[str]:
    """Acknowledge a finished submission, stock or prices: the SKUs still pending after it."""
    stored = submissions.get(session, submission_id)
    if stored.kind == "prices":
        return apply_price_results(session, submission_id,
                                   stored.item_results if results is None else results)
    return inventory.apply_push_results(session, submission_id, results)


def apply_channel_stock(
    session: Session, integration_id: int, stocks: Sequence[ChannelStock]
) -> int:
    """Record channel-owned (FBA) quantities on the integration's FBA listings, creating
    the listing when the product import has not seen it yet. Never touches local stock."""
    updated = 0
    for stock in stocks:
        listing = session.execute(
            select(Listing).where(Listing.integration_id == integration_id,
                                  Listing.channel_sku == stock.channel_sku)
        ).scalar_one_or_none()
        if listing is None:
            listing = new_listing(session, integration_id, stock.channel_sku,
                                           fulfillment=Fulfillment.FBA, asin=stock.asin)
        listing.fulfillment = Fulfillment.FBA
        listing.channel_quantity = stock.quantity
        listing.acknowledged_quantity = stock.quantity
        listing.wanted_quantity = None
        updated += 1
    return updated


def apply_price_results(session: Session, submission_id: int,
                        results: Sequence[ItemResult]) -> list[str]:
    """The sent price becomes the acknowledged one for every accepted SKU; a price set
    again meanwhile differs from it and stays pending. Returns SKUs still pending."""
    stored = submissions.get(session, submission_id)
    row = session.get(SubmissionRow, submission_id)
    prices = (row.payload if row is not None else {}).get("prices", {})
    accepted = {r.channel_sku for r in results if r.accepted}
    refused = inventory.refusals(results)
    now = transaction_now()
    pending = []
    for sku in stored.channel_skus:
        listing = _listing(session, stored.integration_id, sku)
        if listing is None:
            continue
        if sku in accepted and sku in prices:
            listing.acknowledged_price = listing.price = Decimal(prices[sku])
            inventory.accepted_now(listing, "price")
        elif sku in refused and sku in prices:
            inventory.refused_now(listing, "price", refused[sku], now)
        if listing.wanted_price is not None and listing.wanted_price != listing.acknowledged_price:
            pending.append(sku)
    return pending


# --- reading ---------------------------------------------------------------------------------------


def list_listings(session: Session, sku: str | None = None) -> list[dict[str, object]]:
    query = (select(Listing, IntegrationRow.alias, Product.sku)
             .join(IntegrationRow, IntegrationRow.id == Listing.integration_id)
             .outerjoin(Product, Product.id == Listing.product_id)
             .order_by(Product.sku, IntegrationRow.alias, Listing.channel_sku))
    if sku is not None:
        query = query.where(Product.sku == inventory.product_by_sku(session, sku).sku)
    return [
        {"sku": product_sku, "integration": alias, "channel_sku": listing.channel_sku,
         "fulfillment": listing.fulfillment.value, "asin": listing.asin,
         "price": listing.price, "wanted_price": listing.wanted_price,
         "currency": listing.currency, "channel_quantity": listing.channel_quantity,
         "wanted_quantity": listing.wanted_quantity, "on_channel": listing.on_channel,
         "pending": listing.push_generation > listing.pushed_generation,
         "push_error": listing.push_error, "push_retry_at": listing.push_retry_at,
         "price_error": listing.price_error, "price_retry_at": listing.price_retry_at}
        for listing, alias, product_sku in session.execute(query)
    ]
