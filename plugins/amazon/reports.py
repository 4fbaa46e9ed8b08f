"""import_products: the GET_MERCHANT_LISTINGS_ALL_DATA report, followed across calls.

A report takes minutes, so this hook never waits for one: the first call requests it and
returns ``Page(done=False)`` with the report id in ``cursor.state``; later calls (also
after a restart, since the core stores the cursor) look at that same report instead of
requesting a new one, and the call that finds it DONE returns every listing at once as a
complete snapshot. A report Amazon CANCELLED has no data (it does that when there are no
rows): an empty, *incomplete* page, so nothing is marked off-channel because of it.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from marketsync.core import clock
from marketsync.core.errors import MarketsyncError
from marketsync.core.types import (
    ChannelListing,
    Cursor,
    Fulfillment,
    Integration,
    Money,
    Page,
    RejectedRecord,
)
from marketsync.plugins.amazon import listings, marketplaces
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi

BASE = "/reports/2021-06-30"
REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
PENDING = ("IN_QUEUE", "IN_PROGRESS")
#: product-id-type codes of the listings report (1 ASIN, 2 ISBN, 3 UPC, 4 EAN)
EAN_TYPE = "4"


async def import_products(integration: Integration, cursor: Cursor) -> Page[ChannelListing]:
    api = SpApi(integration)
    report_id = cursor.state.get("report_id")
    if not report_id:
        answer = await api.send_json("POST", f"{BASE}/reports", "createReport", expect=(202, 200),
                                     json={"reportType": REPORT_TYPE,
                                           "marketplaceIds": [api.marketplace_id]})
        state = {"report_id": str(answer["reportId"]), "requested_at": clock.now().isoformat()}
        return Page(items=(), done=False, next=Cursor(since=cursor.since, state=state))
    try:
        report = await api.get_json(f"{BASE}/reports/{report_id}", "getReport")
    except AmazonRequestError as exc:
        if exc.status != 404:
            raise
        api.log.warning("report %s is gone; a new one is requested next time", report_id)
        return Page(items=(), done=True, next=Cursor(since=cursor.since))
    status = report.get("processingStatus")
    if status in PENDING:
        return Page(items=(), done=False, next=cursor)
    if status == "CANCELLED":  # no data: not a failure, and not an empty catalog either
        return Page(items=(), done=True, next=Cursor(since=cursor.since))
    if status != "DONE" or not report.get("reportDocumentId"):
        api.log.warning("report %s ended %s; a new one is requested next time", report_id, status)
        return Page(items=(), done=True, next=Cursor(since=cursor.since))
    document = await api.get_json(f"{BASE}/documents/{report['reportDocumentId']}",
                                  "getReportDocument")
    content = await api.download(document["url"], document.get("compressionAlgorithm"))
    currency = marketplaces.MARKETPLACES[integration.marketplace].currency
    items, rejected = parse_listings(content, currency)
    await _learn_product_types(api, items)
    # the quantities are Amazon's as of the report's processing: the core counts the
    # orders purchased before that moment as already missing from them
    snapshot_at = report.get("processingEndTime") or cursor.state.get("requested_at")
    state = {"complete": True, **({"snapshot_at": snapshot_at} if snapshot_at else {})}
    return Page(items=items, rejected=rejected, done=True,
                next=Cursor(since=clock.now(), state=state))


async def _learn_product_types(api: SpApi, items: list[ChannelListing]) -> None:
    """Look up the productType of merchant-fulfilled listings now, at the import's
    priority, so that the first large stock push does not wait for 500 lookups per 10,000
    SKUs (the cache lives with the account, in its plugin state, for 30 days). Best effort: a
    failure here leaves the lookup to the push and does not fail the import."""
    skus = [item.channel_sku for item in items if item.fulfillment is Fulfillment.MFN]
    try:
        await listings.product_types(api, skus)
    except MarketsyncError as exc:
        api.log.info("productType lookup after the listings report failed (%s); the next "
                     "push looks them up", exc)


def decode(content: bytes) -> str:
    """Flat files are UTF-8, except legacy ones in some marketplaces (Windows-1252)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def parse_listings(content: bytes, currency: str) -> tuple[list[ChannelListing], list[RejectedRecord]]:
    """Read the tab-separated report by column name, never by position."""
    reader = csv.DictReader(io.StringIO(decode(content)), delimiter="\t",
                            quoting=csv.QUOTE_NONE)
    items: list[ChannelListing] = []
    rejected: list[RejectedRecord] = []
    for line, row in enumerate(reader, start=2):
        sku = (row.get("seller-sku") or "").strip()
        if not sku:
            rejected.append(RejectedRecord(record_id=None, reason=f"line {line}: no seller-sku",
                                           raw=dict(row)))
            continue
        try:
            items.append(listing(row, currency))
        except ValueError as exc:
            rejected.append(RejectedRecord(record_id=sku, reason=f"line {line}: {exc}",
                                           raw=dict(row)))
    return items, rejected


def listing(row: dict[str, Any], currency: str) -> ChannelListing:
    channel = (row.get("fulfillment-channel") or "DEFAULT").strip()
    price_text = (row.get("price") or "").strip()
    quantity_text = (row.get("quantity") or "").strip()
    try:
        price = Money(amount=Decimal(price_text), currency=currency) if price_text else None
    except InvalidOperation:
        raise ValueError(f"price {price_text!r} is not a number") from None
    try:
        quantity = int(quantity_text) if quantity_text else None
    except ValueError:
        raise ValueError(f"quantity {quantity_text!r} is not a whole number") from None
    product_id = (row.get("product-id") or "").strip()
    return ChannelListing(
        channel_sku=row["seller-sku"].strip(),
        fulfillment=Fulfillment.MFN if channel == "DEFAULT" else Fulfillment.FBA,
        asin=(row.get("asin1") or "").strip() or None,
        ean=product_id if product_id and (row.get("product-id-type") or "").strip() == EAN_TYPE
        else None,
        listing_id=(row.get("listing-id") or "").strip() or None,
        title=(row.get("item-name") or "").strip() or None,
        price=price,
        quantity=quantity,
        status=(row.get("status") or "").strip() or "Active",
    )
