"""The simulator's catalog: what each seller offers, and everything that reads or changes it.

Amazon keeps one listing per seller and SKU; the offer (price) is per marketplace, while the
merchant-fulfilled quantity and handling time belong to the SKU in the seller's region —
a US quantity is also the CA and MX quantity. The classes below keep that split, so a client
that pushes one quantity per marketplace, or expects prices to be shared, is caught here.

The catalog also owns the stores of the APIs that live on it (feeds, reports, documents,
FBA inventory paging, MCF orders) and moves them forward in :meth:`Catalog.advance`, which
the world calls whenever simulated time has passed.
"""

from __future__ import annotations

import copy
import itertools
import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import documents, fba, feeds, fulfillment, listings, reports

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

FULFILLMENT_TYPES = ("MFN", "AFN")
OFFER_STATUSES = ("BUYABLE", "DISCOVERABLE", "INACTIVE")
FBA_CHANNEL_CODE = {"NA": "AMAZON_NA", "EU": "AMAZON_EU", "FE": "AMAZON_FE"}


@dataclass
class MarketplaceOffer:
    """The part of a listing that differs by marketplace: price and visibility."""

    marketplace_id: str
    price: Decimal | None
    currency: str
    status: str = "BUYABLE"


@dataclass
class FbaStock:
    """Amazon-owned stock of one FBA SKU (the seller only reads it)."""

    fulfillable: int = 0
    reserved: int = 0
    inbound_working: int = 0
    inbound_shipped: int = 0
    inbound_receiving: int = 0
    unfulfillable: int = 0
    researching: int = 0
    updated: datetime | None = None

    @property
    def total(self) -> int:
        return (self.fulfillable + self.reserved + self.unfulfillable + self.researching
                + self.inbound_working + self.inbound_shipped + self.inbound_receiving)


@dataclass
class Offer:
    """One listing: a seller's SKU, its product and its offers in the region's marketplaces."""

    seller_id: str
    sku: str
    asin: str
    title: str
    product_type: str
    fulfillment: str
    listing_id: str
    created: datetime
    updated: datetime
    ean: str | None = None
    fnsku: str | None = None
    quantity: int | None = None          # MFN only; shared by the region's marketplaces
    handling_time: int | None = None     # MFN only
    marketplaces: dict[str, MarketplaceOffer] = field(default_factory=dict)
    fba: FbaStock | None = None
    attributes: dict[str, Any] = field(default_factory=dict)   # the rest, as sent
    deleted: bool = False

    @property
    def is_fba(self) -> bool:
        return self.fulfillment == "AFN"

    def available(self) -> int:
        """What a buyer could buy now: MFN quantity or fulfillable FBA stock."""
        if self.is_fba:
            return self.fba.fulfillable if self.fba else 0
        return self.quantity or 0

    def buyable(self, marketplace_id: str) -> bool:
        offer = self.marketplaces.get(marketplace_id)
        return (not self.deleted and offer is not None and offer.status == "BUYABLE"
                and offer.price is not None and self.available() > 0)


@dataclass
class CatalogTiming:
    """How long simulated Amazon takes; scenarios and tests shorten or stretch these."""

    feed_queue: timedelta = timedelta(seconds=30)
    feed_processing: timedelta = timedelta(minutes=2)
    report_queue: timedelta = timedelta(seconds=30)
    report_processing: timedelta = timedelta(minutes=1)
    document_url_ttl: timedelta = timedelta(minutes=5)
    fba_next_token_ttl: timedelta = timedelta(seconds=30)
    fba_page_size: int = 50
    fba_drift_step: timedelta = timedelta(hours=1)
    mcf_page_size: int = 50
    listings_feed_limit: int = 5                      # per region ...
    listings_feed_window: timedelta = timedelta(minutes=5)   # ... per this window


class Catalog:
    """Offers per seller and the API state built on them; constructed by ``World``."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.timing = CatalogTiming()
        self._offers: dict[str, dict[str, Offer]] = {}
        self._ids = itertools.count(1)
        # Own streams, seeded once from the world's: how many ids the API hands out must
        # not change the orders the world generates, nor the FBA drift.
        seed = world.rng.getrandbits(64)
        self.rng = random.Random(f"{seed}:ids")
        self._drift_rng = random.Random(f"{seed}:fba-drift")
        self.documents = documents.DocumentStore(self)
        self.feeds = feeds.FeedStore(self)
        self.reports = reports.ReportStore(self)
        self.fba = fba.FbaInventory(self)
        self.fulfillment = fulfillment.FulfillmentOrders(self)
        self.listing_search_tokens: dict[str, tuple[Any, ...]] = {}
        self._drifted_until: datetime | None = None

    # -- ids ------------------------------------------------------------------------------

    def new_id(self, prefix: str = "", digits: int = 11) -> str:
        """A unique, seeded id: the same scenario and seed give the same ids."""
        n = next(self._ids)
        tail = "".join(self.rng.choice(string.digits) for _ in range(digits - 4))
        return f"{prefix}{n:04d}{tail}"

    def new_token(self, length: int = 32) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    # -- seeding and channel-side edits ---------------------------------------------------

    def put_offer(self, seller_id: str, sku: str, *, asin: str, title: str,
                  marketplace_id: str, price: Decimal | None, currency: str,
                  quantity: int | None, handling_time: int | None,
                  fulfillment: str = "MFN", product_type: str = "PRODUCT",
                  ean: str | None = None, status: str = "BUYABLE") -> None:
        """Create or extend a listing (scenario seeding).

        Called once per marketplace; the quantity is the SKU's, so a second call for another
        marketplace of the region overwrites it rather than adding a separate stock. For an
        AFN (FBA) offer ``quantity`` is the fulfillable FBA stock.
        """
        if fulfillment not in FULFILLMENT_TYPES:
            raise ValueError(f"offer {seller_id}/{sku}: fulfillment must be one of "
                             f"{FULFILLMENT_TYPES}, not {fulfillment!r}")
        if status not in OFFER_STATUSES:
            raise ValueError(f"offer {seller_id}/{sku}: status must be one of "
                             f"{OFFER_STATUSES}, not {status!r}")
        for name, value in (("quantity", quantity), ("handling_time", handling_time)):
            if value is not None and value < 0:
                raise ValueError(f"offer {seller_id}/{sku}: {name} must be >= 0, not {value}")
        self._account(seller_id)
        now = self.world.now()
        offers = self._offers.setdefault(seller_id, {})
        offer = offers.get(sku)
        if offer is None or offer.deleted:
            offer = Offer(seller_id=seller_id, sku=sku, asin=asin, title=title,
                          product_type=product_type, fulfillment=fulfillment,
                          listing_id=self.new_id(digits=14), created=now, updated=now, ean=ean)
            offers[sku] = offer
        offer.asin, offer.title, offer.product_type, offer.ean = asin, title, product_type, ean
        offer.fulfillment = fulfillment
        if fulfillment == "AFN":
            offer.fnsku = offer.fnsku or "X00" + self.new_token(7).upper()
            offer.fba = offer.fba or FbaStock()
            offer.fba.fulfillable = quantity or 0
            offer.fba.updated = now
            offer.quantity = offer.handling_time = None
        else:
            offer.quantity, offer.handling_time = quantity, handling_time
        offer.marketplaces[marketplace_id] = MarketplaceOffer(
            marketplace_id, None if price is None else Decimal(price), currency, status)
        offer.updated = now

    def channel_edit(self, seller_id: str, sku: str, *, marketplace_id: str | None = None,
                     price: Decimal | None = None, quantity: int | None = None) -> None:
        """An edit made on Amazon itself (Seller Central), not through the API.

        The daemon must notice these through imports; the price needs a marketplace, the
        quantity does not (it is the SKU's).
        """
        offer = self.get(seller_id, sku)
        if offer is None:
            raise KeyError(f"channel_edit: no offer {sku!r} for seller {seller_id!r}")
        if price is not None:
            if marketplace_id not in offer.marketplaces:
                raise KeyError(f"channel_edit: offer {seller_id}/{sku} is not listed in "
                               f"marketplace {marketplace_id!r}")
            offer.marketplaces[marketplace_id].price = Decimal(price)
        if quantity is not None:
            if quantity < 0:
                raise ValueError(f"channel_edit {seller_id}/{sku}: quantity {quantity} < 0")
            self.set_quantity(offer, quantity)
        offer.updated = self.world.now()

    def set_quantity(self, offer: Offer, quantity: int) -> None:
        if offer.is_fba:
            assert offer.fba is not None
            offer.fba.fulfillable = quantity
            offer.fba.updated = self.world.now()
        else:
            offer.quantity = quantity

    def rename_sku(self, seller_id: str, old_sku: str, new_sku: str) -> None:
        """The seller relisted the same product (same ASIN) under a new SKU.

        Amazon has no rename: the old listing is gone and a new one appears, with a new
        listing id and creation date. The daemon must treat this as delete + create.
        """
        old = self.get(seller_id, old_sku)
        if old is None:
            raise KeyError(f"rename_sku: no offer {old_sku!r} for seller {seller_id!r}")
        if self.get(seller_id, new_sku) is not None:
            raise ValueError(f"rename_sku: seller {seller_id!r} already has SKU {new_sku!r}")
        now = self.world.now()
        new = copy.deepcopy(old)
        new.sku, new.listing_id, new.created, new.updated = (
            new_sku, self.new_id(digits=14), now, now)
        old.deleted, old.updated = True, now
        self._offers[seller_id][new_sku] = new

    def delete(self, offer: Offer) -> None:
        offer.deleted, offer.updated = True, self.world.now()

    def replace(self, offer: Offer) -> None:
        """Store an edited copy of a listing (edits are made on copies, all-or-nothing)."""
        self._offers.setdefault(offer.seller_id, {})[offer.sku] = offer

    # -- reading --------------------------------------------------------------------------

    def get(self, seller_id: str, sku: str) -> Offer | None:
        """The live listing, or None when there is none (never seeded, or deleted)."""
        offer = self._offers.get(seller_id, {}).get(sku)
        return None if offer is None or offer.deleted else offer

    def offers(self, seller_id: str, *, include_deleted: bool = False) -> list[Offer]:
        found = self._offers.get(seller_id, {}).values()
        return sorted((o for o in found if include_deleted or not o.deleted),
                      key=lambda o: o.sku)

    def view(self, seller_id: str) -> dict[str, Any]:
        """Per SKU and marketplace: quantity, price, handling time, status (JSON-ready)."""
        self._account(seller_id)
        result: dict[str, Any] = {}
        for offer in self.offers(seller_id, include_deleted=True):
            result[offer.sku] = {
                "asin": offer.asin,
                "title": offer.title,
                "productType": offer.product_type,
                "fulfillment": offer.fulfillment,
                "quantity": offer.quantity,
                "handlingTime": offer.handling_time,
                "fbaQuantity": offer.fba.fulfillable if offer.fba else None,
                "deleted": offer.deleted,
                "marketplaces": {
                    mid: {"price": None if m.price is None else str(m.price),
                          "currency": m.currency,
                          "status": m.status,
                          "buyable": offer.buyable(mid)}
                    for mid, m in sorted(offer.marketplaces.items())},
            }
        return result

    def account(self, seller_id: str) -> Any:
        return self._account(seller_id)

    def _account(self, seller_id: str) -> Any:
        try:
            return self.world.accounts[seller_id]
        except KeyError:
            raise KeyError(f"catalog: unknown seller account {seller_id!r}") from None

    def fba_channel_code(self, seller_id: str) -> str:
        return FBA_CHANNEL_CODE.get(self._account(seller_id).region, "AMAZON_NA")

    # -- time -----------------------------------------------------------------------------

    def advance(self, now: datetime) -> None:
        """Bring feeds, reports, MCF orders and FBA stock up to ``now``."""
        self.feeds.advance(now)
        self.reports.advance(now)
        self.fulfillment.advance(now)
        self._drift_fba(now)
        self.documents.expire(now)

    def _drift_fba(self, now: datetime) -> None:
        """FBA stock moves without the seller: sales elsewhere, returns, receiving.

        One seeded step per ``fba_drift_step`` of simulated time, so the daemon's FBA
        import always has something to notice but the same seed gives the same day.
        """
        step = self.timing.fba_drift_step
        if self._drifted_until is None:
            self._drifted_until = now
            return
        rng = self._drift_rng
        quiet = self.world.generator.spec.quiet_from
        if quiet is not None:
            now = min(now, quiet)
        while self._drifted_until + step <= now:
            self._drifted_until += step
            for seller in sorted(self._offers):
                for offer in self.offers(seller):
                    if not offer.is_fba or offer.fba is None:
                        continue
                    stock, roll = offer.fba, rng.random()
                    if roll < 0.25 and stock.fulfillable > 0:
                        stock.fulfillable -= min(stock.fulfillable, rng.randint(1, 2))
                    elif roll < 0.30:
                        stock.fulfillable += rng.randint(5, 20)
                    elif roll < 0.33 and stock.fulfillable > 0:
                        stock.fulfillable -= 1
                        stock.unfulfillable += 1
                    else:
                        continue
                    stock.updated = self._drifted_until

    # -- HTTP -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Every SP-API route of the catalog half, plus the presigned document URLs."""
        return [
            *documents.routes(self),
            *feeds.routes(self),
            *listings.routes(self),
            *reports.routes(self),
            *fba.routes(self),
            *fulfillment.routes(self),
        ]
