"""One ASGI app for every simulated eBay host (api, apiz, auth): their paths never collide."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from . import analytics, control, fulfillment, inventory, oauth
from .gateway import ebay_error
from .world import World


async def _not_found(request: Request, exc: Exception) -> Response:
    return ebay_error(404, 2002, f"Resource not found: {request.method} {request.url.path}",
                      domain="ACCESS")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return ebay_error(405, 2003, f"{request.method} is not allowed on {request.url.path}",
                      domain="ACCESS")


def create_app(world: World) -> Starlette:
    """The simulator as an ASGI app over ``world`` (``app.state.world``)."""
    routes = [*oauth.routes(), *fulfillment.routes(), *inventory.routes(),
              *analytics.routes(), *control.routes()]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.world = world
    return app
