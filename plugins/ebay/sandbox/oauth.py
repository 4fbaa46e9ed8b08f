"""eBay OAuth: the consent page, the token endpoint, and Commerce Identity ``getUser``.

The consent page (``auth.ebay.com/oauth2/authorize``) takes the application's RuName as
``redirect_uri`` and sends the browser to the accept URL registered for it, with ``code``
and ``state``. The token endpoint (``/identity/v1/oauth2/token``) authenticates the
application with HTTP Basic and trades a code for a refresh token (18 months) and an access
token (2 h), or a refresh token for an access token. Errors are OAuth bodies.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .gateway import Call, ebay_api, world_of
from .world import ACCESS_LIFETIME, REFRESH_LIFETIME, CallRecord


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _client(request: Request):
    world = world_of(request)
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except Exception:  # noqa: BLE001 - any garbage is an unauthenticated client
        return None
    app = world.apps.get(client_id)
    return app if app is not None and app.client_secret == secret else None


async def token(request: Request) -> Response:
    world = world_of(request)
    world.advance()
    response, user = await _token(request)
    world.calls.append(CallRecord(world.now(), "token", response.status_code, user, None,
                                  request.url.path))
    return response


async def _token(request: Request) -> tuple[Response, str | None]:
    world = world_of(request)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return oauth_error(400, "invalid_request", "request must be form-urlencoded"), None
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    app = _client(request)
    if app is None:
        return oauth_error(401, "invalid_client", "client authentication failed"), None
    grant = form.get("grant_type")
    now = world.now()
    if grant == "authorization_code":
        code = world.codes.get(form.get("code", ""))
        if (code is None or code.used or code.expires_at <= now or code.client_id != app.client_id
                or form.get("redirect_uri") != app.ru_name):
            return oauth_error(400, "invalid_grant", "the provided authorization grant code is "
                               "invalid or was issued to another client"), None
        code.used = True
        refresh = world.issue_refresh(code.user_id, app.client_id)
        access = world.issue_access(code.user_id, app.client_id)
        return JSONResponse({"access_token": access, "expires_in": ACCESS_LIFETIME,
                             "refresh_token": refresh,
                             "refresh_token_expires_in": REFRESH_LIFETIME,
                             "token_type": "User Access Token"}), code.user_id
    if grant == "refresh_token":
        stored = world.refresh_tokens.get(form.get("refresh_token", ""))
        if stored is None or stored.revoked or stored.expires_at <= now or stored.client_id != app.client_id:
            return oauth_error(400, "invalid_grant", "the provided authorization refresh token "
                               "is invalid or was issued to another client"), None
        access = world.issue_access(stored.user_id, app.client_id)
        return JSONResponse({"access_token": access, "expires_in": ACCESS_LIFETIME,
                             "token_type": "User Access Token"}), stored.user_id
    return oauth_error(400, "unsupported_grant_type", "grant type in request is not supported "
                       "by the authorization server"), None


async def authorize(request: Request) -> Response:
    """The consent page, already signed in as the scenario's consenting seller, answering
    as if they pressed "I agree"."""
    world = world_of(request)
    params = request.query_params
    app = world.apps.get(params.get("client_id", ""))
    if app is None:
        return PlainTextResponse("unknown client_id", status_code=400)
    if params.get("redirect_uri") != app.ru_name:
        return PlainTextResponse("redirect_uri must be the application's RuName", status_code=400)
    if params.get("response_type") != "code":
        return PlainTextResponse("response_type must be code", status_code=400)
    if world.scenario.consent_user is None:
        return PlainTextResponse("no seller signed in", status_code=400)
    code = world.issue_code(world.scenario.consent_user, app.client_id)
    query = {"code": code, "expires_in": "299"}
    if params.get("state"):
        query["state"] = params["state"]
    parts = urlsplit(app.accept_url)
    joined = f"{parts.query}&{urlencode(query)}" if parts.query else urlencode(query)
    return RedirectResponse(urlunsplit(parts._replace(query=joined)), status_code=302)


@ebay_api("getUser")
async def get_user(request: Request, call: Call) -> Response:
    account = call.world.accounts[call.token.user_id]
    return JSONResponse({"userId": account.user_id, "username": account.username,
                         "accountType": "BUSINESS",
                         "registrationMarketplaceId": account.registration_marketplace})


def routes() -> list[Route]:
    return [
        Route("/identity/v1/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/authorize", authorize, methods=["GET"]),
        Route("/commerce/identity/v1/user/", get_user, methods=["GET"]),
    ]
