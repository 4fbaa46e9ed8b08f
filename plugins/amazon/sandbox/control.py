"""``/_sandbox/``: steer the simulated Amazon and read it back.

Tests and benchmarks need what no SP-API call gives: place an order at a chosen moment,
make an edit "in Seller Central", break things on purpose (faults, revoked consent,
malformed records) and then check what the daemon really did — every confirmation, every
feed, every call with its simulated time and status. These endpoints need no token; the
simulator only ever listens on loopback or in-process.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketsync.core.clock import isoformat

from .gateway import world_of
from .orders import render_order
from .scenario import SimOrder
from .sellers import BY_ID, MARKETPLACES
from .world import World

#: what ``malformed`` may ask for: values Amazon has been seen to send, then shape faults
#: (a value of the wrong JSON type where the model has an object, an array or a scalar)
MALFORMATIONS = ("ancient_date", "unknown_enum", "missing_field", "wrong_type",
                 "string_for_object", "array_for_object", "array_for_scalar")


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _world(request: Request) -> World:
    world = world_of(request)
    world.advance()
    return world


def _marketplace_id(value: Any) -> str:
    if value in MARKETPLACES:
        return MARKETPLACES[value].id
    if value in BY_ID:
        return value
    raise ValueError(f"unknown marketplace {value!r}")


def order_view(world: World, order: SimOrder) -> dict[str, Any]:
    """The order as it truly is now (no data lag), plus what the simulator knows."""
    now = world.now()
    body = render_order(order, now, {"FULFILLMENT", "PACKAGES", "CANCELLATION"}, pii=False)
    body["sellerId"] = order.seller_id
    body["visibleFrom"] = isoformat(order.created + order.lag)
    body["events"] = [{"at": isoformat(at), "status": status} for at, status in order.events]
    body["malformed"] = order.malformed
    return body


async def add_order(request: Request) -> Response:
    """``{"marketplace": "US", "items": {"SKU": 2}, "fulfilledBy"?, "sellerId"?, "malformed"?}``"""
    world = _world(request)
    try:
        body = await _body(request)
        marketplace_id = _marketplace_id(body.get("marketplace") or body.get("marketplaceId"))
        account = world.accounts.get(body["sellerId"]) if body.get("sellerId") else world.account_for_marketplace(marketplace_id)
        if account is None or marketplace_id not in account.marketplace_ids:
            raise ValueError("no seller account sells in that marketplace")
        items = body.get("items")
        if not isinstance(items, dict) or not items or not all(isinstance(q, int) and q > 0 for q in items.values()):
            raise ValueError('items must map SKUs to positive quantities, e.g. {"MUG-1": 2}')
        malformed = body.get("malformed")
        if malformed is not None and malformed not in MALFORMATIONS:
            raise ValueError(f"malformed must be one of {MALFORMATIONS}")
        fulfilled_by = body.get("fulfilledBy")
        if fulfilled_by not in (None, "MERCHANT", "AMAZON"):
            raise ValueError("fulfilledBy must be MERCHANT or AMAZON")
        rng = random.Random(f"{world.scenario.seed}:control:{len(world.orders)}:{world.now().isoformat()}")
        order = world.generator.place(account, marketplace_id, items, at=world.now(), rng=rng, fulfilled_by=fulfilled_by)
    except (ValueError, KeyError) as exc:
        return _bad(str(exc).strip("'\""))
    if order is None:
        return _bad("none of the items is in stock")
    order.malformed = malformed
    return JSONResponse(order_view(world, order), status_code=201)


async def list_orders(request: Request) -> Response:
    world = _world(request)
    seller_id = request.query_params.get("sellerId")
    return JSONResponse({"orders": [order_view(world, o) for o in world.orders.values()
                                    if seller_id in (None, o.seller_id)]})


async def get_order(request: Request) -> Response:
    world = _world(request)
    order = world.orders.get(request.path_params["orderId"])
    if order is None:
        return JSONResponse({"error": "no such order"}, status_code=404)
    return JSONResponse(order_view(world, order))


async def catalog_view(request: Request) -> Response:
    world = _world(request)
    seller_id = request.path_params["sellerId"]
    if seller_id not in world.accounts:
        return JSONResponse({"error": f"no seller account {seller_id}"}, status_code=404)
    return JSONResponse(world.catalog.view(seller_id))


async def channel_edit(request: Request) -> Response:
    """``{"sellerId", "sku", "marketplace"?, "price"?, "quantity"?}`` — an edit in Seller Central."""
    world = _world(request)
    try:
        body = await _body(request)
        seller_id, sku = body["sellerId"], body["sku"]
        marketplace = body.get("marketplace") or body.get("marketplaceId")
        price = Decimal(str(body["price"])) if body.get("price") is not None else None
        world.catalog.channel_edit(seller_id, sku, marketplace_id=_marketplace_id(marketplace) if marketplace else None,
                                   price=price, quantity=body.get("quantity"))
    except (ValueError, KeyError, InvalidOperation) as exc:
        return _bad(f"channel edit refused: {str(exc).strip(chr(39))}")
    return JSONResponse(world.catalog.view(seller_id).get(sku, {}))


async def faults(request: Request) -> Response:
    """GET reads, POST merges (errorShare, latency, operations, tokenLifetime, stuckFeeds,
    fatalFeeds), DELETE turns every fault off."""
    world = _world(request)
    f = world.faults
    if request.method == "DELETE":
        f.error_share, f.latency, f.operations, f.token_lifetime = {}, 0.0, None, None
        f.stuck_feeds = f.fatal_feeds = False
    elif request.method == "POST":
        try:
            body = await _body(request)
            _apply_faults(world, body)
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
    return JSONResponse(f.as_json())


def _apply_faults(world: World, body: dict[str, Any]) -> None:
    f = world.faults
    known = {"errorShare", "latency", "operations", "tokenLifetime", "stuckFeeds", "fatalFeeds", "expireTokens"}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fault settings {sorted(unknown)}; known: {sorted(known)}")
    if "errorShare" in body:
        share = {int(k): float(v) for k, v in (body["errorShare"] or {}).items()}
        if any(k not in (500, 503) for k in share) or sum(share.values()) > 1 or any(v < 0 for v in share.values()):
            raise ValueError("errorShare maps 500/503 to shares that sum to at most 1")
        f.error_share = share
    if "latency" in body:
        f.latency = max(0.0, float(body["latency"]))
    if "operations" in body:
        f.operations = set(body["operations"]) if body["operations"] is not None else None
    if "tokenLifetime" in body:
        f.token_lifetime = int(body["tokenLifetime"]) if body["tokenLifetime"] is not None else None
    for key, attr in (("stuckFeeds", "stuck_feeds"), ("fatalFeeds", "fatal_feeds")):
        if key in body:
            value = body[key]
            setattr(f, attr, set(value) if isinstance(value, list) else bool(value))
    if body.get("expireTokens"):
        world.expire_access_tokens()


async def revoke(request: Request) -> Response:
    """``{"sellerId"?, "refreshToken"?}``: the seller withdrew consent (→ invalid_grant)."""
    world = _world(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _bad(str(exc))
    count = world.revoke_refresh_tokens(seller_id=body.get("sellerId"), token=body.get("refreshToken"))
    return JSONResponse({"revoked": count})


async def expire_tokens(request: Request) -> Response:
    return JSONResponse({"expired": _world(request).expire_access_tokens()})


async def confirmations(request: Request) -> Response:
    world = _world(request)
    order_id = request.query_params.get("orderId")
    return JSONResponse({"confirmations": [c for c in world.confirmations if order_id in (None, c["orderId"])]})


async def submissions(request: Request) -> Response:
    world = _world(request)
    feeds = getattr(getattr(world.catalog, "feeds", None), "feeds", {})
    return JSONResponse({"feeds": [{**feed.as_json(), "sellerId": feed.seller_id} for feed in feeds.values()]})


async def calls(request: Request) -> Response:
    world = _world(request)
    operation, seller_id = request.query_params.get("operation"), request.query_params.get("sellerId")
    return JSONResponse({"calls": [c.as_json() for c in world.calls
                                   if operation in (None, c.operation) and seller_id in (None, c.seller_id)]})


async def credentials(request: Request) -> Response:
    """The scenario's (simulated, worthless) credentials, for a demo's connect wizard."""
    world = _world(request)
    return JSONResponse(describe_credentials(world))


def describe_credentials(world: World) -> dict[str, Any]:
    return {
        "now": isoformat(world.now()),
        "applications": [{"clientId": a.client_id, "clientSecret": a.client_secret, "applicationId": a.application_id,
                          "redirectUris": a.redirect_uris} for a in world.applications.values()],
        "accounts": [{"sellerId": a.seller_id, "region": a.region, "marketplaceIds": a.marketplace_ids,
                      "piiAccess": a.pii_access, "refreshTokens": a.refresh_tokens} for a in world.accounts.values()],
    }


def routes() -> list[Route]:
    return [
        Route("/_sandbox/orders", add_order, methods=["POST"]),
        Route("/_sandbox/orders", list_orders, methods=["GET"]),
        Route("/_sandbox/orders/{orderId}", get_order, methods=["GET"]),
        Route("/_sandbox/catalog/{sellerId}", catalog_view, methods=["GET"]),
        Route("/_sandbox/catalog/edit", channel_edit, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/tokens/revoke", revoke, methods=["POST"]),
        Route("/_sandbox/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/_sandbox/confirmations", confirmations, methods=["GET"]),
        Route("/_sandbox/submissions", submissions, methods=["GET"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
        Route("/_sandbox/credentials", credentials, methods=["GET"]),
    ]
