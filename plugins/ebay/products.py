"""import_products: inventory items and their offers on the integration's marketplace.

``getInventoryItems`` pages through the seller's SKUs (100 a call); for each, ``getOffers``
gives the offer on this marketplace (price, quantity, listing id). eBay offers a SKU on one
marketplace only, so an integration keeps the SKUs offered on its own. The offer ids are
remembered for pushes (``offer_ids``). The last page says ``complete``: the core then marks
listings it did not see as gone from the channel.

Matching to local products is the core's (SKU, then EAN, then MPN); a UPC is handed over
as the same GTIN written with 13 digits, the way an EAN is. ``product.mpn`` goes over as
given: eBay pairs it with ``product.brand`` (a listing needs both), but the core matches the
MPN alone and refuses to guess when it names two products, so the brand is not needed for
safety; sellers' "Does not apply" placeholders are dropped by the core.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marketsync.core.types import ChannelListing, Cursor, Integration, Money, Page, RejectedRecord
from marketsync.plugins.ebay.client import EbayApi, EbayRequestError, marketplace_id

ITEMS_PATH = "/sell/inventory/v1/inventory_item"
OFFERS_PATH = "/sell/inventory/v1/offer"
PAGE_SIZE = 100
_OFFERS = "ebay.offers"


def offer_ids(integration: Integration) -> dict[str, tuple[str, str | None]]:
    """SKU -> (offer id, listing id) as last seen on this integration's marketplace."""
    return integration.runtime.setdefault(_OFFERS, {})


def gtin(product: dict) -> str | None:
    """EAN as given, else a 12-digit UPC as the 13-digit GTIN it is, else None."""
    for value in product.get("ean") or ():
        if isinstance(value, str) and value.isdigit():
            return value
    for value in product.get("upc") or ():
        if isinstance(value, str) and value.isdigit() and len(value) == 12:
            return "0" + value
    return None


async def offer_of(api: EbayApi, integration: Integration, sku: str) -> dict | None:
    """The published or unpublished offer for ``sku`` on this marketplace, or None."""
    try:
        body = await api.get_json(OFFERS_PATH, "getOffers",
                                  params={"sku": sku, "marketplace_id": api.marketplace_id})
    except EbayRequestError as exc:
        if exc.status == 404:
            return None
        raise
    for offer in body.get("offers") or ():
        if isinstance(offer, dict) and offer.get("marketplaceId") == marketplace_id(integration) \
                and offer.get("format", "FIXED_PRICE") == "FIXED_PRICE":
            offer_ids(integration)[sku] = (str(offer.get("offerId")),
                                           (offer.get("listing") or {}).get("listingId"))
            return offer
    return None


async def import_products(integration: Integration, cursor: Cursor) -> Page[ChannelListing]:
    api = EbayApi(integration)
    offset = int(cursor.state.get("offset", 0))
    body = await api.get_json(ITEMS_PATH, "getInventoryItems",
                              params={"limit": str(PAGE_SIZE), "offset": str(offset)})
    records = body.get("inventoryItems") or []
    listings: list[ChannelListing] = []
    rejected: list[RejectedRecord] = []
    for record in records:
        sku = record.get("sku") if isinstance(record, dict) else None
        if not isinstance(sku, str) or not sku:
            rejected.append(RejectedRecord(record_id=None, reason="eBay inventory item without "
                                           "a SKU", raw=record))
            continue
        offer = await offer_of(api, integration, sku)
        if offer is None:
            continue  # offered on another marketplace, or not offered at all
        try:
            listings.append(_listing(record, offer))
        except ValueError as exc:
            rejected.append(RejectedRecord(record_id=sku, reason=f"eBay offer: {exc}", raw=offer))
    total = body.get("total") if isinstance(body.get("total"), int) else 0
    following = offset + len(records)
    if records and following < total:
        return Page(items=listings, rejected=rejected, done=False,
                    next=Cursor(state={"offset": following}))
    return Page(items=listings, rejected=rejected, done=True,
                next=Cursor(state={"complete": True}))


def _listing(record: dict, offer: dict) -> ChannelListing:
    product = record.get("product") or {}
    price = None
    amount = (offer.get("pricingSummary") or {}).get("price")
    if amount is not None:
        try:
            price = Money(amount=Decimal(str(amount["value"])), currency=str(amount["currency"]))
        except (KeyError, TypeError, InvalidOperation):
            raise ValueError(f"price is not an Amount: {amount!r}") from None
    quantity = offer.get("availableQuantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        raise ValueError(f"availableQuantity is not an integer: {quantity!r}")
    listing = offer.get("listing") or {}
    published = offer.get("status") == "PUBLISHED" and listing.get("listingStatus") in (
        None, "ACTIVE", "OUT_OF_STOCK")
    mpn = product.get("mpn")
    return ChannelListing(channel_sku=str(record["sku"]), ean=gtin(product),
                          mpn=mpn if isinstance(mpn, str) else None,
                          listing_id=listing.get("listingId"), title=product.get("title"),
                          price=price, quantity=quantity,
                          status="Active" if published else "Inactive")
