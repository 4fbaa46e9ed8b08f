"""Developer Analytics ``getRateLimits``: the application's daily quotas, live.

One ``RateLimit`` per API (context + name) with one resource named ``context.name``
carrying ``limit``, ``remaining``, ``reset`` (when the day's window restarts) and
``timeWindow`` (86400 seconds).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .gateway import Call, ebay_api
from .world import _iso


@ebay_api("getRateLimits")
async def get_rate_limits(request: Request, call: Call) -> Response:
    world = call.world
    context = request.query_params.get("api_context")
    name = request.query_params.get("api_name")
    limits = []
    for api in sorted(world.scenario.quotas):
        api_context, api_name = api.split(".")
        if (context and context != api_context) or (name and name != api_name):
            continue
        limit, remaining = world.quota(call.token.client_id, api)
        limits.append({"apiContext": api_context, "apiName": api_name, "apiVersion": "v1",
                       "resources": [{"name": api, "rates": [{
                           "limit": limit, "remaining": remaining,
                           "reset": _iso(world.next_reset()), "timeWindow": 86400}]}]})
    return JSONResponse({"rateLimits": limits})


def routes() -> list[Route]:
    return [Route("/developer/analytics/v1_beta/rate_limit/", get_rate_limits, methods=["GET"])]
