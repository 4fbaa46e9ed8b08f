"""One ASGI app for every simulated Amazon host.

The real SP-API is three regional hosts plus api.amazon.com (LWA) and Seller Central
(consent); the paths never collide, so one base URL serves them all and the client only
needs its endpoints pointed here.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from . import control, lwa, notifications, orders, sellers, tokens
from .gateway import error_response
from .world import World


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, "NotFound", f"No resource at {request.method} {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.url.path}")


def create_app(world: World) -> Starlette:
    """The simulator as an ASGI app over ``world`` (``app.state.world``)."""
    routes = [
        *lwa.routes(),
        *control.routes(),
        *sellers.routes(),
        *tokens.routes(),
        *orders.routes(),
        *notifications.routes(),
        *world.catalog.routes(),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.world = world
    return app
