"""Sell Inventory: inventory items and offers (paged), ``bulkUpdatePriceQuantity``.

``bulkUpdatePriceQuantity`` takes at most 25 requests a call and answers 200 when every
item succeeded, else 207 with a status per offer; a published listing revised more often
than the scenario's ``revision_limit`` (eBay: 250) in one calendar day is refused.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .contract import BULK_LIMIT
from .gateway import Call, ebay_api, ebay_error

BASE = "/sell/inventory/v1"


def _paging(request: Request, default: int, maximum: int) -> tuple[int, int]:
    limit = int(request.query_params.get("limit", default))
    offset = int(request.query_params.get("offset", 0))
    if not 1 <= limit <= maximum or offset < 0:
        raise ValueError
    return limit, offset


def _page(call: Call, path: str, key: str, records: list, limit: int, offset: int,
          extra: dict) -> dict:
    base = f"{call.world.base_url}{BASE}{path}?"
    body = {"href": base + urlencode({**extra, "limit": limit, "offset": offset}),
            "limit": limit, "size": len(records[offset:offset + limit]), "total": len(records),
            key: records[offset:offset + limit]}
    if offset + limit < len(records):
        body["next"] = base + urlencode({**extra, "limit": limit, "offset": offset + limit})
    if offset:
        body["prev"] = base + urlencode({**extra, "limit": limit, "offset": max(0, offset - limit)})
    return body


@ebay_api("getInventoryItems")
async def get_inventory_items(request: Request, call: Call) -> Response:
    try:
        limit, offset = _paging(request, 25, 200)
    except ValueError:
        return ebay_error(400, 25707, "Invalid value for limit or offset.")
    offers = sorted(call.world.offers[call.token.user_id].values(), key=lambda o: o.item.sku)
    records = [call.world.render_item(offer) for offer in offers]
    return JSONResponse(_page(call, "/inventory_item", "inventoryItems", records, limit,
                              offset, {}))


@ebay_api("getOffers")
async def get_offers(request: Request, call: Call) -> Response:
    try:
        limit, offset = _paging(request, 100, 200)
    except ValueError:
        return ebay_error(400, 25707, "Invalid value for limit or offset.")
    sku = request.query_params.get("sku")
    offers = sorted(call.world.offers[call.token.user_id].values(), key=lambda o: o.item.sku)
    if sku is not None:
        offers = [o for o in offers if o.item.sku == sku]
        if not offers:
            return ebay_error(404, 25713, "This Offer is not available.")
    market = request.query_params.get("marketplace_id")
    if market:
        offers = [o for o in offers if o.item.marketplace == market]
    records = [call.world.render_offer(offer) for offer in offers]
    extra = {k: v for k, v in (("sku", sku), ("marketplace_id", market)) if v}
    return JSONResponse(_page(call, "/offer", "offers", records, limit, offset, extra))


@ebay_api("bulkUpdatePriceQuantity")
async def bulk_update_price_quantity(request: Request, call: Call) -> Response:
    if not request.headers.get("content-type", "").startswith("application/json"):
        return ebay_error(415, 2004, "Content-Type must be application/json", domain="ACCESS")
    try:
        body = json.loads(await request.body())
        requests = body["requests"]
        if not isinstance(requests, list) or not requests:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return ebay_error(400, 25709, "Invalid request: 'requests' must be a non-empty array.")
    if len(requests) > BULK_LIMIT:
        return ebay_error(400, 25710, f"At most {BULK_LIMIT} requests per call.")
    responses = []
    for entry in requests:
        if not isinstance(entry, dict):
            return ebay_error(400, 25709, "Invalid request entry.")
        responses += call.world.revise(call.token.user_id, entry)
    status = 200 if all(r["statusCode"] == 200 for r in responses) else 207
    return JSONResponse({"responses": responses}, status_code=status)


def routes() -> list[Route]:
    return [
        Route(f"{BASE}/inventory_item", get_inventory_items, methods=["GET"]),
        Route(f"{BASE}/offer", get_offers, methods=["GET"]),
        Route(f"{BASE}/bulk_update_price_quantity", bulk_update_price_quantity, methods=["POST"]),
    ]
