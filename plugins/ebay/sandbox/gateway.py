"""What every simulated eBay REST call goes through: token, quota, faults, call log.

eBay checks the ``Authorization: Bearer`` user token (401, errorId 1001), counts the call
against the application's daily quota for that API (429, errorId 2001) and answers errors
as ``{"errors": [...]}``. One decorator does it for every endpoint so that all of them
refuse, fail and log the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .world import Token, World, error


@dataclass
class Call:
    world: World
    token: Token
    operation: str


Handler = Callable[[Request, Call], Awaitable[Response]]


def world_of(request: Request) -> World:
    return request.app.state.world


def ebay_error(status: int, error_id: int, message: str, **kw) -> JSONResponse:
    return JSONResponse(error(error_id, message, **kw), status_code=status)


def ebay_api(operation: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """``@ebay_api("getOrders") async def handler(request, call)``."""

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            world = world_of(request)
            world.advance()
            token = world.authenticate(request.headers.get("authorization", ""))
            if token is None:
                response: Response = ebay_error(
                    401, 1001, "Invalid access token", domain="OAuth",
                    status_text="Invalid access token. Check the value of the Authorization "
                                "HTTP request header.")
            elif not world.charge(token.client_id, operation):
                response = ebay_error(429, 2001, "Too many requests. The request limit has "
                                                 "been reached for the resource.",
                                      domain="ACCESS")
            elif (status := world.fault_for(operation)) is not None:
                response = ebay_error(status, 10001, "System error. Try again later.",
                                      category="APPLICATION", domain="API_" + operation.upper())
            else:
                response = await handler(request, Call(world, token, operation))
            world.log(operation, response.status_code, token, request.url.path)
            return response

        endpoint.operation = operation  # type: ignore[attr-defined]
        return endpoint

    return decorate
