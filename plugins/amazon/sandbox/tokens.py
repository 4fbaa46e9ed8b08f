"""Tokens API: restricted data tokens for the v0 order paths that hide PII.

An RDT is an access token narrowed to the (method, path) pairs it was asked for; the
gateway accepts it only there, and the v0 handlers show buyer and address data only
when its ``dataElements`` ask for them and the account has the PII roles.
"""

from __future__ import annotations

import json
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .gateway import Call, error_response, json_response, sp_api
from .world import ACCESS_TOKEN_LIFETIME, Grant

METHODS = ("GET", "PUT", "POST", "DELETE")
DATA_ELEMENTS = ("buyerInfo", "shippingAddress", "buyerTaxInformation")


def _invalid(message: str) -> Response:
    return error_response(400, "InvalidInput", message)


@sp_api("createRestrictedDataToken")
async def create_restricted_data_token(request: Request, call: Call) -> Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return _invalid("The request body is not valid JSON")
    resources = body.get("restrictedResources") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not 1 <= len(resources) <= 50:
        return _invalid("restrictedResources must list 1 to 50 resources")
    granted: list[tuple[str, str]] = []
    elements: set[str] = set()
    for index, resource in enumerate(resources):
        where = f"restrictedResources[{index}]"
        if not isinstance(resource, dict) or resource.get("method") not in METHODS:
            return _invalid(f"{where}.method must be one of {', '.join(METHODS)}")
        path = resource.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            return _invalid(f"{where}.path must be an absolute API path")
        for element in resource.get("dataElements") or []:
            if element not in DATA_ELEMENTS:
                return _invalid(f"{where}.dataElements: {element!r} is not one of {', '.join(DATA_ELEMENTS)}")
            elements.add(element)
        granted.append((resource["method"], path.split("?")[0]))
    lifetime = ACCESS_TOKEN_LIFETIME.total_seconds()
    if call.world.faults.token_lifetime is not None:
        lifetime = min(lifetime, call.world.faults.token_lifetime)
    token = call.world.new_secret("Atz.sprdt|")
    call.world.grants[token] = Grant(
        seller_id=call.account.seller_id, client_id="", expires_at=call.now + timedelta(seconds=lifetime),
        restricted=granted, data_elements=sorted(elements),
    )
    return json_response({"restrictedDataToken": token, "expiresIn": 3600})


def routes() -> list[Route]:
    return [Route("/tokens/2021-03-01/restrictedDataToken", create_restricted_data_token, methods=["POST"])]
