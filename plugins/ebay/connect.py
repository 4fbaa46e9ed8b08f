"""Connecting an eBay account: consent through the RuName, the code exchange, the check.

eBay's authorization-code grant does not take a redirect URL: the application registers a
*RuName* whose accept URL is the daemon's callback, and both the consent page and the code
exchange name the RuName as ``redirect_uri``. The refresh token (18 months) is what the core
stores, encrypted; access tokens (2 hours) are made from it as needed (``client.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode

from marketsync.core.errors import (
    IntegrationAuthFailed,
    IntegrationError,
    IntegrationNotReady,
    TransientError,
)
from marketsync.core.types import AccountInfo, Integration
from marketsync.plugins.ebay import manifest
from marketsync.plugins.ebay.client import (
    APIZ_HOST,
    AUTH_HOST,
    SCOPES,
    EbayApi,
    EbayRequestError,
    endpoint_of,
)

AUTHORIZE_PATH = "/oauth2/authorize"
USER_PATH = "/commerce/identity/v1/user/"
RATE_LIMITS_PATH = "/developer/analytics/v1_beta/rate_limit/"


def ru_name(integration: Integration) -> str:
    value = integration.credentials.get("ru_name")
    if not value:
        raise IntegrationError(f"{integration.alias}: credentials.ru_name (the application's "
                               f"RuName from the eBay developer portal) is needed to connect")
    return value


def consent_url(integration: Integration, state: str) -> str:
    """eBay's consent page for the application, carrying the core's one-time ``state``."""
    if not state:
        raise ValueError("consent_url needs the one-time state the core created")
    client_id = integration.credentials.get("client_id")
    if not client_id:
        raise IntegrationError(f"{integration.alias}: credentials.client_id is needed")
    host = endpoint_of(integration, AUTH_HOST) if integration.settings.get("endpoint") or (
        integration.http is not None and integration.http.base_url.host) else AUTH_HOST
    query = {"client_id": client_id, "redirect_uri": ru_name(integration),
             "response_type": "code", "scope": " ".join(SCOPES), "state": state}
    return f"{host}{AUTHORIZE_PATH}?{urlencode(query)}"


async def redeem(integration: Integration, params: Mapping[str, str]) -> dict[str, str]:
    """The redirect's ``code`` (or one pasted by hand) → the account's refresh token."""
    code = params.get("code")
    if not code:
        raise IntegrationAuthFailed(f"{integration.alias}: eBay sent no authorization code "
                                    f"(the seller may have declined)")
    body = await EbayApi(integration).token_request({
        "grant_type": "authorization_code", "code": code, "redirect_uri": ru_name(integration)})
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise IntegrationAuthFailed(f"{integration.alias}: eBay returned no refresh token")
    return {"refresh_token": refresh}


async def check(integration: Integration) -> AccountInfo:
    """``getUser`` proves the token; ``getRateLimits`` tells the governor today's quotas."""
    try:
        api = EbayApi(integration)
        user = await api.get_json(USER_PATH, "getUser", host=APIZ_HOST)
    except TransientError as exc:
        raise IntegrationNotReady(f"{integration.alias}: eBay not reachable: {exc}") from None
    except EbayRequestError as exc:
        raise IntegrationNotReady(f"{integration.alias}: {exc}") from None
    user_id = user.get("userId") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise IntegrationNotReady(f"{integration.alias}: eBay's getUser answered without a userId")
    await learn_quotas(integration, api)
    # eBay accounts may list on every eBay site; which ones carry offers shows in products
    return AccountInfo(seller_id=user_id, marketplaces=tuple(manifest.MARKETPLACES),
                       details={"username": user.get("username"),
                                "registered_in": user.get("registrationMarketplaceId")})


async def learn_quotas(integration: Integration, api: EbayApi) -> int:
    """Read the live daily quotas and hand them to the governor; returns how many.

    A failure here is not a failed check: the published figures still hold.
    """
    if integration.report_quota is None:
        return 0
    try:
        body = await api.get_json(RATE_LIMITS_PATH, "getRateLimits")
    except (TransientError, EbayRequestError) as exc:
        integration.log.info("could not read eBay's live quotas (%s); using the published ones", exc)
        return 0
    learnt = 0
    operations: dict[str, str] = {}
    for operation, api_name in manifest.API_OF.items():
        operations.setdefault(api_name, operation)
    for limit in body.get("rateLimits") or ():
        for resource in limit.get("resources") or ():
            operation = operations.get(str(resource.get("name")))
            rates = resource.get("rates") or []
            if operation is None or not rates:
                continue
            rate = rates[0]
            try:
                resets = datetime.fromisoformat(str(rate["reset"]).replace("Z", "+00:00"))
                integration.report_quota(operation, int(rate["limit"]), int(rate["remaining"]),
                                         resets)
            except (KeyError, TypeError, ValueError):
                continue
            learnt += 1
    return learnt
