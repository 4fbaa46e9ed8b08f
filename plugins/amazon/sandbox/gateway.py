"""What every simulated SP-API call goes through before and after its handler.

Amazon puts one gateway in front of all its APIs: the access token is checked, the
usage-plan bucket of (selling partner, operation) is charged, and every answer carries a
request id. Doing this in one decorator keeps the two halves of the simulator (orders and
platform here, catalog/feeds/reports/FBA in engineer B's modules) throttling, failing and
logging the same way, so the daemon meets one consistent Amazon.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Awaitable, Callable

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from .world import SellerAccount, World

Handler = Callable[[Request, "Call"], Awaitable[Response]]

DENIED_MESSAGE = "Access to requested resource is denied."
QUOTA_MESSAGE = "You exceeded your quota for the requested resource."


@dataclass
class Call:
    """What a handler receives besides the request."""

    world: "World"
    account: "SellerAccount"
    operation: str
    now: datetime


def error_response(
    status: int,
    code: str,
    message: str,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The SP-API ErrorList body ``{"errors": [{"code", "message", "details"?}]}``."""
    error: dict[str, str] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


def json_response(body: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def world_of(request: Request) -> "World":
    return request.app.state.world


def sp_api(operation: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Decorator for an SP-API endpoint: ``@sp_api("getFeed") async def h(request, call)``.

    Before the handler: the world is advanced to now, the ``x-amz-access-token`` is checked
    (403 ``Unauthorized``), the (account, operation) token bucket is charged (429
    ``QuotaExceeded``), injected faults are applied (latency, a share of 500/503). After:
    ``x-amzn-RequestId`` on every answer and ``x-amzn-RateLimit-Limit`` on the answers the
    models declare it for (the handler's own answers; not 403/429/5xx from the gateway).
    Every call, refused or not, lands in the world's call log.
    """

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            world = world_of(request)
            world.advance()
            now = world.now()
            request_id = world.next_request_id()
            response, account = await _dispatch(world, request, operation, now, handler)
            response.headers["x-amzn-RequestId"] = request_id
            world.log_call(now, operation, response.status_code, account, request.url.path)
            return response

        endpoint.operation = operation  # type: ignore[attr-defined]
        return endpoint

    return decorate


async def _dispatch(
    world: "World", request: Request, operation: str, now: datetime, handler: Handler
) -> tuple[Response, "SellerAccount | None"]:
    token = request.headers.get("x-amz-access-token", "")
    account = world.authenticate(token, now, request.method, request.url.path)
    if account is None:
        return error_response(403, "Unauthorized", DENIED_MESSAGE), None
    plan_rate = world.throttle.take(account.seller_id, operation, now)
    if plan_rate is False:
        return error_response(429, "QuotaExceeded", QUOTA_MESSAGE), account
    latency = world.faults.latency_for(operation)
    if latency > 0:
        await trio.sleep(latency)
    injected = world.faults.failure_for(operation)
    if injected is not None:
        code = "InternalFailure" if injected == 500 else "ServiceUnavailable"
        message = "We encountered an internal error. Please try again." if injected == 500 else (
            "Service temporarily unavailable. Please try again."
        )
        return error_response(injected, code, message), account
    response = await handler(request, Call(world=world, account=account, operation=operation, now=now))
    if plan_rate is not None and response.status_code in (200, 201, 202, 204, 400, 404):
        response.headers["x-amzn-RateLimit-Limit"] = _format_rate(plan_rate)
    return response, account


def _format_rate(rate: float) -> str:
    text = repr(float(rate))
    return text
