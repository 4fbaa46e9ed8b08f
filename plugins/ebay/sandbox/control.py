"""``/_sandbox/``: steer the simulated eBay and read back what the daemon did.

Tests, the demo and the benchmark need what no eBay call gives: a sale at a chosen moment,
a cancellation, an edit in Seller Hub, a fault or a malformed order on purpose, and then
every offer, fulfilment, quota and call as the simulator saw it. No token is needed: the
simulator only listens on loopback or in-process.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .gateway import world_of
from .world import Fault, World, _iso

MALFORMATIONS = ("missing_line_items", "unknown_status", "bad_quantity")


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _body(request: Request) -> dict[str, Any]:
    body = json.loads(await request.body() or b"{}")
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _world(request: Request) -> World:
    world = world_of(request)
    world.advance()
    return world


def _user(world: World, body: dict) -> str:
    user = body.get("user_id") or next(iter(world.accounts))
    if user not in world.accounts:
        raise ValueError(f"unknown user_id {user!r}")
    return user


async def sell(request: Request) -> Response:
    world = _world(request)
    try:
        body = await _body(request)
        user = _user(world, body)
        order = world.sell(user, str(body["sku"]), int(body.get("quantity", 1)))
    except (ValueError, KeyError) as exc:
        return _bad(str(exc))
    return JSONResponse(order, status_code=201)


async def cancel(request: Request) -> Response:
    world = _world(request)
    order_id = request.path_params["order_id"]
    for user, orders in world.orders.items():
        if order_id in orders:
            return JSONResponse(world.cancel(user, order_id))
    return _bad(f"unknown order {order_id}")


async def malformed(request: Request) -> Response:
    world = _world(request)
    try:
        body = await _body(request)
        user = _user(world, body)
        kind = body.get("kind", "missing_line_items")
        if kind not in MALFORMATIONS:
            raise ValueError(f"kind must be one of {', '.join(MALFORMATIONS)}")
        sku = body.get("sku") or next(iter(world.offers[user]))
    except (ValueError, StopIteration) as exc:
        return _bad(str(exc))
    offer = world.offers[user][sku]
    offer.available += 1  # sell() takes one; a broken record must not cost stock
    order = world.sell(user, sku, 1)
    del world.orders[user][order["orderId"]]
    if kind == "missing_line_items":
        del order["lineItems"]
    elif kind == "unknown_status":
        order["orderFulfillmentStatus"] = "TELEPORTED"
    else:
        order["lineItems"][0]["quantity"] = "two"
    world.malformed[user].append(order)
    return JSONResponse(order, status_code=201)


async def seller_edit(request: Request) -> Response:
    """The seller changed an offer in Seller Hub: it counts as a revision, like ours."""
    world = _world(request)
    try:
        body = await _body(request)
        user = _user(world, body)
        offer = world.offers[user][str(body["sku"])]
    except (ValueError, KeyError) as exc:
        return _bad(f"unknown offer: {exc}")
    entry: dict[str, Any] = {}
    if "quantity" in body:
        entry["availableQuantity"] = int(body["quantity"])
    if "price" in body:
        entry["price"] = {"value": str(body["price"]), "currency": offer.currency}
    return JSONResponse(world._revise_offer(offer, entry))


async def offers(request: Request) -> Response:
    world = _world(request)
    today = world.day()
    return JSONResponse({user: {sku: {**world.render_offer(o),
                                      "revisionsToday": world.revisions[(o.listing_id, today)]}
                                for sku, o in by_sku.items()}
                         for user, by_sku in world.offers.items()})


async def orders(request: Request) -> Response:
    world = _world(request)
    return JSONResponse({user: list(found.values()) for user, found in world.orders.items()})


async def fulfillments(request: Request) -> Response:
    world = _world(request)
    return JSONResponse(dict(world.fulfillments))


async def calls(request: Request) -> Response:
    world = _world(request)
    return JSONResponse([{"at": _iso(c.at), "operation": c.operation, "status": c.status,
                          "userId": c.user_id, "path": c.path} for c in world.calls])


async def quotas(request: Request) -> Response:
    world = _world(request)
    return JSONResponse([{"clientId": client, "api": api, "day": day.isoformat(), "used": used,
                          "limit": world.scenario.quotas[api]}
                         for (client, api, day), used in sorted(world.usage.items())])


async def faults(request: Request) -> Response:
    world = _world(request)
    try:
        body = await _body(request)
        world.faults[str(body["operation"])].append(
            Fault(status=int(body.get("status", 500)), times=int(body.get("times", 1))))
    except (ValueError, KeyError) as exc:
        return _bad(f"need operation, status, times: {exc}")
    return JSONResponse({"ok": True})


async def revoke(request: Request) -> Response:
    world = _world(request)
    try:
        world.revoke(_user(world, await _body(request)))
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse({"ok": True})


async def credentials(request: Request) -> Response:
    world = _world(request)
    return JSONResponse(describe(world))


def describe(world: World) -> dict:
    return {"now": _iso(world.now()),
            "applications": [{"clientId": a.client_id, "clientSecret": a.client_secret,
                              "ruName": a.ru_name, "acceptUrl": a.accept_url}
                             for a in world.apps.values()],
            "accounts": [{"userId": a.user_id, "marketplaces": a.marketplaces,
                          "refreshTokens": a.refresh_tokens} for a in world.accounts.values()]}


def routes() -> list[Route]:
    p = "/_sandbox"
    return [
        Route(f"{p}/orders", sell, methods=["POST"]),
        Route(f"{p}/orders", orders, methods=["GET"]),
        Route(f"{p}/orders/{{order_id}}/cancel", cancel, methods=["POST"]),
        Route(f"{p}/malformed-orders", malformed, methods=["POST"]),
        Route(f"{p}/seller-edits", seller_edit, methods=["POST"]),
        Route(f"{p}/offers", offers, methods=["GET"]),
        Route(f"{p}/fulfillments", fulfillments, methods=["GET"]),
        Route(f"{p}/calls", calls, methods=["GET"]),
        Route(f"{p}/quotas", quotas, methods=["GET"]),
        Route(f"{p}/faults", faults, methods=["POST"]),
        Route(f"{p}/revoke", revoke, methods=["POST"]),
        Route(f"{p}/credentials", credentials, methods=["GET"]),
    ]
