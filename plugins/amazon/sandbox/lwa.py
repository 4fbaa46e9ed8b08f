"""Login with Amazon: the token endpoint and the Seller Central consent page.

These are the two doors of the authorization dance (REFERENCE §3): the consent page sends
the browser back with a one-time ``spapi_oauth_code``; the token endpoint trades it (or a
refresh token) for hour-long access tokens. Errors use LWA's OAuth bodies
(``{"error", "error_description"}``), not the SP-API ErrorList, because that is what the
client has to parse on the real ``api.amazon.com``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .gateway import world_of
from .world import ACCESS_TOKEN_LIFETIME, AUTH_CODE_LIFETIME, CallRecord, Grant, World


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error_description": description, "error": error}, status_code=status)


async def token(request: Request) -> Response:
    world = world_of(request)
    world.advance()
    now = world.now()
    response, seller_id = await _token(world, request)
    response.headers["x-amzn-RequestId"] = world.next_request_id()
    world.calls.append(_record(world, now, "lwaToken", response.status_code, seller_id, request.url.path))
    return response


def _record(world: World, now, operation: str, status: int, seller_id: str | None, path: str) -> CallRecord:
    return CallRecord(now, operation, status, seller_id, path)


async def _token(world: World, request: Request) -> tuple[Response, str | None]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return oauth_error(400, "invalid_request", "The request must be application/x-www-form-urlencoded"), None
    # parsed here: starlette's request.form() would need python-multipart for nothing more
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    grant_type = str(form.get("grant_type") or "")
    if not grant_type:
        return oauth_error(400, "invalid_request", "The request is missing a required parameter : grant_type"), None
    if grant_type == "client_credentials":
        return _grantless(world, form)
    if grant_type not in ("refresh_token", "authorization_code"):
        return oauth_error(400, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server"), None
    needed = ("refresh_token",) if grant_type == "refresh_token" else ("code", "redirect_uri")
    for name in ("client_id", "client_secret", *needed):
        if not form.get(name):
            return oauth_error(400, "invalid_request", f"The request is missing a required parameter : {name}"), None
    app = world.applications.get(str(form["client_id"]))
    if app is None or app.client_secret != form["client_secret"]:
        return oauth_error(401, "invalid_client", "Client authentication failed"), None
    now = world.now()
    if grant_type == "refresh_token":
        grant = world.grants.get(str(form["refresh_token"]))
        if grant is None or grant.revoked or not str(form["refresh_token"]).startswith("Atzr|") or grant.client_id != app.client_id:
            return oauth_error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"), None
        access, lifetime = world.issue_access_token(grant.seller_id, app.client_id, now)
        body = {"access_token": access, "refresh_token": str(form["refresh_token"]), "token_type": "bearer", "expires_in": lifetime}
        return JSONResponse(body), grant.seller_id
    code = world.grants.get(str(form["code"]))
    if (
        code is None or code.used or code.restricted is not None or code.redirect_uri is None
        or code.expires_at is None or code.expires_at <= now or code.client_id != app.client_id
        or code.redirect_uri != form["redirect_uri"]
    ):
        return oauth_error(400, "invalid_grant", "The request has an invalid grant parameter : code"), None
    code.used = True
    refresh = world.issue_refresh_token(code.seller_id, app.client_id)
    access, lifetime = world.issue_access_token(code.seller_id, app.client_id, now)
    body = {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": lifetime}
    return JSONResponse(body), code.seller_id


#: the scopes a grantless token may be asked for (Notifications API; app integrations)
GRANTLESS_SCOPES = ("sellingpartnerapi::notifications", "sellingpartnerapi::client_credential:rotation")


def _grantless(world: World, form: dict) -> tuple[Response, str | None]:
    """``grant_type=client_credentials``: a token for the application itself, no seller."""
    for name in ("client_id", "client_secret", "scope"):
        if not form.get(name):
            return oauth_error(400, "invalid_request", f"The request is missing a required parameter : {name}"), None
    app = world.applications.get(str(form["client_id"]))
    if app is None or app.client_secret != form["client_secret"]:
        return oauth_error(401, "invalid_client", "Client authentication failed"), None
    if form["scope"] not in GRANTLESS_SCOPES:
        return oauth_error(400, "invalid_scope", "An unknown scope was requested"), None
    now = world.now()
    token = world.new_secret("Atza|")
    world.grants[token] = Grant(seller_id="", client_id=app.client_id, scope=str(form["scope"]),
                                expires_at=now + ACCESS_TOKEN_LIFETIME)
    body = {"access_token": token, "scope": form["scope"], "token_type": "bearer",
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds())}
    return JSONResponse(body), None


async def consent(request: Request) -> Response:
    """Seller Central's consent page, already "signed in" as the scenario's consenting
    account: it answers with the redirect Amazon sends after the seller presses Confirm."""
    world = world_of(request)
    world.advance()
    now = world.now()
    params = request.query_params
    app = next((a for a in world.applications.values() if a.application_id == params.get("application_id")), None)
    if app is None:
        return _consent_refused(world, now, request, "Unknown application_id; the app is not registered.")
    state = params.get("state")
    if not state:
        return _consent_refused(world, now, request, "The state parameter is required.")
    redirect_uri = params.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris else None)
    if redirect_uri is None or (app.redirect_uris and redirect_uri not in app.redirect_uris):
        return _consent_refused(world, now, request, "The redirect_uri is not registered for this application.")
    seller_id = world.consenting_seller_id
    code = world.new_secret("ANsandbox")
    world.grants[code] = Grant(seller_id=seller_id, client_id=app.client_id, expires_at=now + AUTH_CODE_LIFETIME,
                               redirect_uri=redirect_uri)
    parts = urlsplit(redirect_uri)
    query = urlencode({"state": state, "selling_partner_id": seller_id, "spapi_oauth_code": code})
    location = urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))
    world.calls.append(_record(world, now, "consent", 302, seller_id, request.url.path))
    return RedirectResponse(location, status_code=302)


def _consent_refused(world: World, now, request: Request, message: str) -> Response:
    world.calls.append(_record(world, now, "consent", 400, None, request.url.path))
    return PlainTextResponse(message, status_code=400)


def routes() -> list[Route]:
    return [
        Route("/auth/o2/token", token, methods=["POST"]),
        Route("/apps/authorize/consent", consent, methods=["GET"]),
    ]
