"""push_stock and push_prices: ``bulkUpdatePriceQuantity``, 25 offers a call, synchronously.

eBay lets one listing be revised at most 250 times per calendar day (Pacific time) and
then refuses it until the next day. The plugin counts its own revisions per listing and
day and never sends the one that would pass ``revision_limit - revision_reserve`` (the
reserve is for the seller's own edits in Seller Hub): that SKU comes back refused with
the reason, the core keeps it pending and asks again later, by which time the core has
coalesced every change into one latest quantity. A refusal by eBay itself marks the
listing spent for the day too. Counts live in memory: after a restart eBay's own refusal
is the guard until the day ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from zoneinfo import ZoneInfo

from marketsync.core import clock
from marketsync.core.types import (
    ItemResult,
    Integration,
    Money,
    PriceUpdate,
    StockUpdate,
    Submission,
)
from marketsync.plugins.ebay import manifest
from marketsync.plugins.ebay.client import EbayApi
from marketsync.plugins.ebay.products import offer_ids, offer_of

PATH = "/sell/inventory/v1/bulk_update_price_quantity"
BULK_LIMIT = 25
REVISION_LIMIT = 250
REVISION_RESERVE = 10
_REVISIONS = "ebay.revisions"


def today() -> date:
    return clock.now().astimezone(ZoneInfo(manifest.DAY_ZONE)).date()


def revisions(integration: Integration) -> dict[tuple[str, date], int]:
    """(listing id, day) -> revisions this process made (account-wide: listings are)."""
    return integration.account_runtime.setdefault(_REVISIONS, {})


def budget(integration: Integration) -> int:
    limit = int(integration.settings.get("revision_limit") or REVISION_LIMIT)
    reserve = int(integration.settings.get("revision_reserve", REVISION_RESERVE))
    return max(1, limit - reserve)


async def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    entries = [(u.channel_sku, u.quantity, u.price) for u in updates]
    return await _push(integration, "stock", entries)


async def push_prices(integration: Integration, updates: Sequence[PriceUpdate]) -> Submission:
    entries = [(u.channel_sku, None, u.price) for u in updates]
    return await _push(integration, "prices", entries)


async def _push(integration: Integration, kind: str,
                entries: list[tuple[str, int | None, Money | None]]) -> Submission:
    api = EbayApi(integration)
    known = offer_ids(integration)
    counts = revisions(integration)
    day, allowed = today(), budget(integration)
    results: list[ItemResult] = []
    sendable: list[tuple[str, str, str | None, dict]] = []
    for sku, quantity, price in entries:
        if sku not in known and await offer_of(api, integration, sku) is None:
            results.append(ItemResult(channel_sku=sku, accepted=False,
                                      message=f"no offer for {sku} on eBay {integration.marketplace}"))
            continue
        offer_id, listing_id = known[sku]
        if listing_id and counts.get((listing_id, day), 0) >= allowed:
            results.append(ItemResult(channel_sku=sku, accepted=False, message=(
                f"held: listing {listing_id} has used its {allowed} revisions for "
                f"{day.isoformat()} (eBay allows 250 a day); sent again after midnight "
                f"Pacific time")))
            continue
        entry: dict = {"offerId": offer_id}
        if quantity is not None:
            entry["availableQuantity"] = max(0, int(quantity))
        if price is not None:
            entry["price"] = {"value": str(price.amount), "currency": price.currency}
        sendable.append((sku, offer_id, listing_id, entry))
    for start in range(0, len(sendable), BULK_LIMIT):
        chunk = sendable[start:start + BULK_LIMIT]
        body = await api.post_json(PATH, "bulkUpdatePriceQuantity",
                                   {"requests": [{"sku": sku, "offers": [entry]}
                                                 for sku, _, _, entry in chunk]},
                                   expect=(200, 207))
        answers = {str(r.get("offerId")): r for r in body.get("responses") or ()
                   if isinstance(r, dict)}
        for sku, offer_id, listing_id, _ in chunk:
            answer = answers.get(offer_id)
            if answer is None:
                results.append(ItemResult(channel_sku=sku, accepted=False,
                                          message="eBay gave no answer for this offer"))
                continue
            ok = answer.get("statusCode") == 200
            if listing_id and ok:
                counts[(listing_id, day)] = counts.get((listing_id, day), 0) + 1
            message = None
            if not ok:
                errors = answer.get("errors") or [{}]
                message = str(errors[0].get("message") or f"HTTP {answer.get('statusCode')}")
                if listing_id and "revision" in message.lower():
                    counts[(listing_id, day)] = allowed  # eBay says spent: believe it
            results.append(ItemResult(channel_sku=sku, accepted=ok, message=message))
    return Submission(kind=kind, channel_id=f"ebay-bulk-{uuid.uuid4().hex[:12]}",
                      channel_skus=tuple(sku for sku, _, _ in entries),
                      submitted_at=clock.now(), poll_after=0.0, results=tuple(results))


def revision_report(integration: Integration) -> dict[str, int]:
    """Listing id -> revisions made today, for status and tests."""
    day = today()
    return {listing: n for (listing, d), n in revisions(integration).items() if d == day}


