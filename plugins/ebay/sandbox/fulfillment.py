"""Sell Fulfillment: ``getOrders`` (filter, offset paging), shipping fulfilments.

``getOrders`` reads ``filter=lastmodifieddate:[from..to]`` (or ``creationdate``), both
ends inclusive and either optional, pages with ``limit`` (default 50, at most 200) and
``offset``, and lists the newest order first. ``total`` is counted at each call, so an
order modified between two pages leaves the window and the later pages shift, as on eBay.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .contract import ORDERS_DEFAULT_LIMIT, ORDERS_MAX_LIMIT
from .gateway import Call, ebay_api, ebay_error
from .world import parse_iso

BASE = "/sell/fulfillment/v1"
_RANGE = re.compile(r"^(lastmodifieddate|creationdate):\[([^\]]*?)\.\.([^\]]*)\]$")


def _window(text: str) -> tuple[str, datetime | None, datetime | None]:
    """Parse one ``field:[from..to]`` criterion (the only ones the plugin sends)."""
    criteria = [c for c in text.split(",") if c and not c.startswith("orderfulfillmentstatus:")]
    chosen = None
    for criterion in criteria:
        match = _RANGE.match(criterion.strip())
        if match is None:
            raise ValueError(f"Invalid filter: {criterion}")
        if chosen is None or match.group(1) == "creationdate":  # creationdate wins
            chosen = match
    if chosen is None:
        return "creationdate", None, None
    bounds = []
    for raw in chosen.group(2, 3):
        bounds.append(parse_iso(raw) if raw else None)
    return chosen.group(1), bounds[0], bounds[1]


@ebay_api("getOrders")
async def get_orders(request: Request, call: Call) -> Response:
    params = request.query_params
    try:
        limit = int(params.get("limit", ORDERS_DEFAULT_LIMIT))
        offset = int(params.get("offset", 0))
        if not 1 <= limit <= ORDERS_MAX_LIMIT or offset < 0:
            raise ValueError
    except ValueError:
        return ebay_error(400, 30700, "The 'limit' or 'offset' value is invalid.",
                          domain="API_FULFILLMENT")
    world, user = call.world, call.token.user_id
    orders = list(world.orders[user].values())
    if params.get("orderIds"):
        wanted = params["orderIds"].split(",")
        if len(wanted) > 50:
            return ebay_error(400, 30850, "At most 50 orderIds.", domain="API_FULFILLMENT")
        selected = [o for o in orders if o["orderId"] in wanted]
    else:
        try:
            field, since, until = _window(params.get("filter", ""))
        except ValueError as exc:
            return ebay_error(400, 30800, str(exc), domain="API_FULFILLMENT")
        key = "lastModifiedDate" if field == "lastmodifieddate" else "creationDate"
        selected = [o for o in orders if (since is None or parse_iso(o[key]) >= since)
                    and (until is None or parse_iso(o[key]) <= until)]
        selected += [raw for raw in world.malformed[user]
                     if isinstance(raw.get("lastModifiedDate"), str)
                     and (since is None or raw["lastModifiedDate"] >= _iso_text(since))]
    selected.sort(key=lambda o: str(o.get("creationDate", "")), reverse=True)
    page = selected[offset:offset + limit]
    href = f"{world.base_url}{BASE}/order?" + urlencode({k: v for k, v in params.items()})
    body = {"href": href, "limit": limit, "offset": offset, "total": len(selected),
            "orders": page}
    if offset + limit < len(selected):
        body["next"] = f"{world.base_url}{BASE}/order?" + urlencode(
            {**params, "offset": str(offset + limit), "limit": str(limit)})
    if offset > 0:
        body["prev"] = f"{world.base_url}{BASE}/order?" + urlencode(
            {**params, "offset": str(max(0, offset - limit)), "limit": str(limit)})
    return JSONResponse(body)


def _iso_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


@ebay_api("getOrder")
async def get_order(request: Request, call: Call) -> Response:
    order = call.world.orders[call.token.user_id].get(request.path_params["order_id"])
    if order is None:
        return ebay_error(404, 32100, "Invalid order ID.", domain="API_FULFILLMENT")
    return JSONResponse(order)


@ebay_api("createShippingFulfillment")
async def create_shipping_fulfillment(request: Request, call: Call) -> Response:
    order_id = request.path_params["order_id"]
    if not request.headers.get("content-type", "").startswith("application/json"):
        return ebay_error(415, 2004, "Content-Type must be application/json", domain="ACCESS")
    try:
        details = await request.json()
        if not isinstance(details, dict):
            raise ValueError
    except ValueError:
        return ebay_error(400, 32000, "The request body is not valid JSON.",
                          domain="API_FULFILLMENT")
    status, body = call.world.ship(call.token.user_id, order_id, details)
    if status != 201:
        return JSONResponse(body, status_code=status)
    location = (f"{call.world.base_url}{BASE}/order/{order_id}/shipping_fulfillment/"
                f"{body['fulfillmentId']}")
    return JSONResponse({}, status_code=201, headers={"location": location})


@ebay_api("getShippingFulfillments")
async def get_shipping_fulfillments(request: Request, call: Call) -> Response:
    order_id = request.path_params["order_id"]
    if order_id not in call.world.orders[call.token.user_id]:
        return ebay_error(404, 32100, "Invalid order ID.", domain="API_FULFILLMENT")
    found = call.world.fulfillments[order_id]
    return JSONResponse({"fulfillments": list(found), "total": len(found)})


def routes() -> list[Route]:
    return [
        Route(f"{BASE}/order", get_orders, methods=["GET"]),
        Route(f"{BASE}/order/{{order_id}}", get_order, methods=["GET"]),
        Route(f"{BASE}/order/{{order_id}}/shipping_fulfillment", create_shipping_fulfillment,
              methods=["POST"]),
        Route(f"{BASE}/order/{{order_id}}/shipping_fulfillment", get_shipping_fulfillments,
              methods=["GET"]),
    ]
