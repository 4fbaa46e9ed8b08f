"""push_stock and push_prices: ``bulkUpdatePriceQuantity``, 25 offers a call, synchronously.

eBay lets one listing be revised at most 250 times per calendar day (Pacific time) and
then refuses it until the next day. The plugin counts its own revisions per listing and
day and never sends the one that would pass ``revision_limit - revision_reserve`` (the
reserve is for the seller's own edits in Seller Hub): that SKU comes back refused with
the reason, the core keeps it pending and asks again later, by which time the core has
coalesced every change into one latest quantity. A refusal by eBay itself marks the
listing spent for the day too.

The counts live in the account's plugin state (the core's database), so a restart, or a
second replica, counts on from where the day stands. A revision is claimed *before* the
call and given back when eBay refuses the offer or the call is never made: a crash
between the two leaves a count one too high, never one too low.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import trio
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
#: seconds a give-back of claimed revisions may take while the push is being cancelled
GIVE_BACK_TIMEOUT = 10.0


def today() -> date:
    return clock.now().astimezone(ZoneInfo(manifest.DAY_ZONE)).date()


def day_ends(day: date) -> datetime:
    """When ``day``'s revisions stop counting: the next Pacific midnight, plus an hour
    for the clocks of eBay and ours to disagree."""
    zone = ZoneInfo(manifest.DAY_ZONE)
    return datetime.combine(day + timedelta(days=1), time(0), zone) + timedelta(hours=1)


def revision_key(listing_id: str, day: date) -> str:
    return f"revisions/{day.isoformat()}/{listing_id}"


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
    day, allowed = today(), budget(integration)
    results: list[ItemResult] = []
    planned: list[tuple[str, str, str | None, dict]] = []
    for sku, quantity, price in entries:
        if sku not in known and await offer_of(api, integration, sku) is None:
            results.append(ItemResult(channel_sku=sku, accepted=False,
                                      message=f"no offer for {sku} on eBay {integration.marketplace}"))
            continue
        offer_id, listing_id = known[sku]
        entry: dict = {"offerId": offer_id}
        if quantity is not None:
            entry["availableQuantity"] = max(0, int(quantity))
        if price is not None:
            entry["price"] = {"value": str(price.amount), "currency": price.currency}
        planned.append((sku, offer_id, listing_id, entry))
    sendable, held = await _claim(integration, planned, day, allowed)
    for sku, listing_id in held:
        results.append(ItemResult(channel_sku=sku, accepted=False, message=(
            f"held: listing {listing_id} has used its {allowed} revisions for "
            f"{day.isoformat()} (eBay allows 250 a day); sent again after midnight "
            f"Pacific time")))
    unsent = Counter(revision_key(listing_id, day) for _, _, listing_id, _ in sendable
                     if listing_id)
    try:
        for start in range(0, len(sendable), BULK_LIMIT):
            chunk = sendable[start:start + BULK_LIMIT]
            for _, _, listing_id, _ in chunk:
                if listing_id:  # from here on eBay may have applied it: the claim stays
                    unsent[revision_key(listing_id, day)] -= 1
            results += await _send(integration, api, chunk, day, allowed)
    finally:
        await _give_back(integration, +unsent, day)
    return Submission(kind=kind, channel_id=f"ebay-bulk-{uuid.uuid4().hex[:12]}",
                      channel_skus=tuple(sku for sku, _, _ in entries),
                      submitted_at=clock.now(), poll_after=0.0, results=tuple(results))


async def _claim(integration: Integration, planned: list[tuple[str, str, str | None, dict]],
                 day: date, allowed: int
                 ) -> tuple[list[tuple[str, str, str | None, dict]], list[tuple[str, str]]]:
    """Claim one revision per offer to send; the offers whose claim passes the day's
    budget are held (and their claims given back)."""
    wanted = Counter(revision_key(listing_id, day) for _, _, listing_id, _ in planned
                     if listing_id)
    if not wanted:
        return planned, []
    after = await integration.account_state.add(dict(wanted), expires_at=day_ends(day))
    # of a listing's offers (variations share a listing) the first ones fit in the budget
    room = {key: max(0, allowed - (after[key] - wanted[key])) for key in wanted}
    sendable, held, over = [], [], Counter()
    for item in planned:
        sku, _, listing_id, _ = item
        if listing_id is None:
            sendable.append(item)
            continue
        key = revision_key(listing_id, day)
        if room[key] > 0:
            room[key] -= 1
            sendable.append(item)
        else:
            held.append((sku, listing_id))
            over[key] += 1
    await _give_back(integration, over, day)
    return sendable, held


async def _give_back(integration: Integration, amounts: Counter, day: date) -> None:
    """Return claims of revisions that were not made; done even while the push is being
    cancelled (a claim kept would hold a listing early), within a short deadline."""
    amounts = +amounts
    if not amounts:
        return
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + GIVE_BACK_TIMEOUT
        await integration.account_state.add({key: -n for key, n in amounts.items()},
                                            expires_at=day_ends(day))


async def _send(integration: Integration, api: EbayApi,
                chunk: list[tuple[str, str, str | None, dict]], day: date,
                allowed: int) -> list[ItemResult]:
    body = await api.post_json(PATH, "bulkUpdatePriceQuantity",
                               {"requests": [{"sku": sku, "offers": [entry]}
                                             for sku, _, _, entry in chunk]},
                               expect=(200, 207))
    answers = {str(r.get("offerId")): r for r in body.get("responses") or ()
               if isinstance(r, dict)}
    results: list[ItemResult] = []
    refused, spent = Counter(), set()
    for sku, offer_id, listing_id, _ in chunk:
        answer = answers.get(offer_id)
        if answer is None:  # eBay may still have applied it: the claim stays
            results.append(ItemResult(channel_sku=sku, accepted=False,
                                      message="eBay gave no answer for this offer"))
            continue
        ok = answer.get("statusCode") == 200
        message = None
        if not ok:
            errors = answer.get("errors") or [{}]
            message = str(errors[0].get("message") or f"HTTP {answer.get('statusCode')}")
            if listing_id:
                if "revision" in message.lower():
                    spent.add(revision_key(listing_id, day))  # eBay says spent: believe it
                else:
                    refused[revision_key(listing_id, day)] += 1
        results.append(ItemResult(channel_sku=sku, accepted=ok, message=message))
    await _give_back(integration, refused, day)
    if spent:
        counts = await integration.account_state.counts(sorted(spent))
        await integration.account_state.add(
            {key: allowed - count for key, count in counts.items() if count < allowed},
            expires_at=day_ends(day))
    return results


async def revision_report(integration: Integration, listing_ids: Sequence[str]) -> dict[str, int]:
    """Listing id -> revisions counted today, for status and tests."""
    day = today()
    counts = await integration.account_state.counts(
        [revision_key(listing, day) for listing in listing_ids])
    return {listing: counts[revision_key(listing, day)] for listing in listing_ids}
