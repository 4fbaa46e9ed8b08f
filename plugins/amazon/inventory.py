"""import_stock: FBA fulfillable quantities from getInventorySummaries (read-only).

Amazon owns FBA stock, so this only reads it. A ``nextToken`` dies 30 seconds after it
is issued, so every page is read within one hook call and the token is never put in a
cursor that could outlive it; the answer is one complete snapshot.
"""

from __future__ import annotations

from typing import Any

from marketsync.core import clock
from marketsync.core.errors import CursorExpired
from marketsync.core.types import ChannelStock, Cursor, Integration, Page
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi

PATH = "/fba/inventory/v1/summaries"
#: a safety stop: Amazon pages 50 summaries, so this is 250,000 FBA SKUs
MAX_PAGES = 5000


async def import_stock(integration: Integration, cursor: Cursor) -> Page[ChannelStock]:
    if integration.settings.get("inventory", "both") not in ("FBA", "both"):
        return Page(items=(), done=True, next=cursor)
    api = SpApi(integration)
    base = {
        "details": "true",
        "granularityType": "Marketplace",
        "granularityId": api.marketplace_id,
        "marketplaceIds": api.marketplace_id,
    }
    items: list[ChannelStock] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        params = dict(base, nextToken=token) if token else base
        try:
            body = await api.get_json(PATH, "getInventorySummaries", params=params)
        except AmazonRequestError as exc:
            if token and exc.status == 400:  # the 30-second token died while we waited
                raise CursorExpired(f"getInventorySummaries page token refused: {exc.detail}")
            raise
        payload = body.get("payload") or {}
        items.extend(stock(s) for s in payload.get("inventorySummaries") or ()
                     if s.get("sellerSku"))
        token = (body.get("pagination") or {}).get("nextToken")
        if not token:
            break
    return Page(items=items, done=True, next=Cursor(since=clock.now(), state={"complete": True}))


def stock(summary: dict[str, Any]) -> ChannelStock:
    details = summary.get("inventoryDetails") or {}
    fulfillable = details.get("fulfillableQuantity")
    extra = {
        "total": summary.get("totalQuantity"),
        "inbound_working": details.get("inboundWorkingQuantity"),
        "inbound_shipped": details.get("inboundShippedQuantity"),
        "inbound_receiving": details.get("inboundReceivingQuantity"),
        "reserved": (details.get("reservedQuantity") or {}).get("totalReservedQuantity"),
        "researching": (details.get("researchingQuantity") or {}).get("totalResearchingQuantity"),
        "unfulfillable": (details.get("unfulfillableQuantity") or {}).get(
            "totalUnfulfillableQuantity"),
    }
    return ChannelStock(
        channel_sku=summary["sellerSku"],
        quantity=int(fulfillable or 0),
        asin=summary.get("asin") or None,
        details={k: int(v) for k, v in extra.items() if isinstance(v, int)},
    )
