"""Connecting an account: the consent URL, the code exchange, and the credential check.

The core owns the flow (it makes the one-time ``state``, remembers it, serves the
callback, stores the refresh token as a secret); the plugin knows Amazon's side:

1. :func:`consent_url` (hook ``authorization_url``) — Seller Central's consent page for
   the integration's marketplace, carrying the core's ``state``.
2. :func:`redeem` (hook ``complete_authorization``) — the ``spapi_oauth_code`` is
   exchanged for a refresh token. :func:`complete` does the same after checking the
   redirect's ``state`` itself, in constant time, for callers without the core's check.
3. :func:`check` — ``getMarketplaceParticipations`` proves the credentials and that the
   account sells in the integration's marketplace (the ``check_credentials`` hook).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from marketsync.core.errors import (
    IntegrationAuthFailed,
    IntegrationError,
    IntegrationNotReady,
    TransientError,
)
from marketsync.core.types import AccountInfo, Integration
from marketsync.plugins.amazon import marketplaces
from marketsync.plugins.amazon.client import SpApi, endpoint_of

CONSENT_PATH = "/apps/authorize/consent"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"


@dataclass(frozen=True)
class Authorization:
    """What a completed consent gives: credentials for the account (refresh token: secret)."""

    refresh_token: str
    seller_id: str | None

    def __repr__(self) -> str:  # never print the token
        return f"Authorization(seller_id={self.seller_id!r}, refresh_token=<secret>)"

    def credentials(self) -> dict[str, str]:
        """The account credential keys to store (``refresh_token`` is a secret)."""
        found = {"refresh_token": self.refresh_token}
        if self.seller_id:
            found["seller_id"] = self.seller_id
        return found


def consent_url(integration: Integration, state: str, *, redirect_uri: str | None = None,
                draft: bool = False) -> str:
    """Where to send the seller's browser to authorize the app for this account.

    ``draft=True`` adds ``version=beta``, which Amazon needs while the app is unpublished.
    With an overridden endpoint (the simulator) the consent page is served there too.
    """
    app_id = integration.credentials.get("app_id")
    if not app_id:
        raise IntegrationError(f"{integration.alias}: credentials.app_id (the application id "
                               f"amzn1.sellerapps.app...) is needed for the consent URL")
    if not state:
        raise ValueError("consent_url needs the one-time state the core created")
    # the account's endpoint override reaches us as the governed client's base URL (or,
    # without the core, in settings); anything but Amazon's own host is the simulator
    host = endpoint_of(integration)
    if host == marketplaces.endpoint_for(integration.marketplace):
        host = marketplaces.seller_central_url(integration.marketplace)
    query = {"application_id": app_id, "state": state}
    if draft:
        query["version"] = "beta"
    if redirect_uri:
        query["redirect_uri"] = redirect_uri
    return f"{host}{CONSENT_PATH}?{urlencode(query)}"


async def complete(integration: Integration, redirect: Mapping[str, str], expected_state: str,
                   redirect_uri: str) -> Authorization:
    """Check the redirect's state, then exchange its code for a refresh token.

    :raises IntegrationAuthFailed: the state is not the one sent, no code came back, or
        LWA refused the code (expired, used, another app's).
    """
    state = redirect.get("state") or ""
    if not expected_state or not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise IntegrationAuthFailed(f"{integration.alias}: the consent answer does not carry "
                                    f"the state this connect sent; start the connect again")
    return await redeem(integration, redirect, redirect_uri)


async def redeem(integration: Integration, params: Mapping[str, str],
                 redirect_uri: str) -> Authorization:
    """The redirect's code (or one pasted by hand as ``{"code": ...}``) → credentials.

    The ``complete_authorization`` hook: the core has checked ``state`` already.
    """
    code = params.get("spapi_oauth_code") or params.get("code")
    if not code:
        raise IntegrationAuthFailed(f"{integration.alias}: Amazon sent no authorization code "
                                    f"(the seller may have declined)")
    return await exchange_code(integration, code, redirect_uri,
                               seller_id=params.get("selling_partner_id") or None)


async def exchange_code(integration: Integration, code: str, redirect_uri: str, *,
                        seller_id: str | None = None) -> Authorization:
    """``authorization_code`` grant → the account's refresh token (also for a pasted code)."""
    credentials = integration.credentials
    body = await SpApi(integration).lwa({
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": credentials.get("client_id", ""),
        "client_secret": credentials.get("client_secret", ""),
    })
    refresh_token = body.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise IntegrationAuthFailed(f"{integration.alias}: Login with Amazon returned no "
                                    f"refresh token for the code")
    return Authorization(refresh_token=refresh_token, seller_id=seller_id)


async def check(integration: Integration) -> AccountInfo:
    """The ``check_credentials`` hook: who the seller is and where the account sells."""
    try:
        api = SpApi(integration)
        body = await api.get_json(PARTICIPATIONS, "getMarketplaceParticipations")
    except TransientError as exc:  # Throttled included: try the setup again later
        raise IntegrationNotReady(f"{integration.alias}: Amazon not reachable: {exc}") from None
    codes: list[str] = []
    currencies: dict[str, str] = {}
    for entry in body.get("payload") or ():
        market = entry.get("marketplace") or {}
        if not (entry.get("participation") or {}).get("isParticipating", False):
            continue
        try:
            code = marketplaces.by_id(str(market.get("id"))).code
        except KeyError:
            continue  # non-Amazon pseudo-marketplaces
        codes.append(code)
        if market.get("defaultCurrencyCode"):
            currencies[code] = market["defaultCurrencyCode"]
    if integration.marketplace not in codes:
        known = ", ".join(codes) or "no marketplace"
        raise IntegrationError(f"this account does not sell in {integration.marketplace} "
                               f"(it sells in {known})")
    return AccountInfo(seller_id=integration.credentials.get("seller_id") or None,
                       marketplaces=tuple(codes), details={"currencies": currencies})
