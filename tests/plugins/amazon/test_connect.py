"""Connect and check_credentials against the simulated Amazon."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from marketsync.core.errors import IntegrationAuthFailed, IntegrationError
from marketsync.plugins.amazon import connect

from .conftest import APP_ID, EU, REDIRECT_URI, calls


async def test_check_credentials_names_seller_and_marketplaces(make_integration, autojump_clock):
    """A working refresh token gives the account's marketplaces."""
    info = await connect.check(make_integration("DE"))
    assert info.seller_id == EU
    assert sorted(info.marketplaces) == ["DE", "UK"]


async def test_marketplace_the_account_does_not_sell_in_is_an_error(make_integration,
                                                                    autojump_clock):
    """The EU account asked for FR: a permanent problem, explained."""
    with pytest.raises(IntegrationError, match="this account does not sell in FR"):
        await connect.check(make_integration("FR", account="eu"))


async def test_revoked_refresh_token_means_auth_failed(make_integration, world, autojump_clock):
    """invalid_grant from LWA → IntegrationAuthFailed, and the token never shows."""
    world.revoke_refresh_tokens(seller_id=EU)
    with pytest.raises(IntegrationAuthFailed) as raised:
        await connect.check(make_integration("DE"))
    assert "invalid_grant" in str(raised.value)
    assert "Atzr" not in str(raised.value)


async def test_missing_refresh_token_asks_for_connect(make_integration, autojump_clock):
    integration = make_integration("DE", credentials={"refresh_token": ""})
    with pytest.raises(IntegrationAuthFailed, match="marketsync connect"):
        await connect.check(integration)


async def test_consent_url_carries_app_and_state(make_integration):
    url = connect.consent_url(make_integration("DE", endpoint=None), "st-123", draft=True)
    parts = urlsplit(url)
    assert parts.netloc == "sellercentral-europe.amazon.com"
    assert parts.path == "/apps/authorize/consent"
    assert parse_qs(parts.query) == {"application_id": [APP_ID], "state": ["st-123"],
                                     "version": ["beta"]}


async def _consent(integration, state: str) -> dict[str, str]:
    """Follow the consent URL as the seller's browser would, to the redirect it ends on."""
    url = connect.consent_url(integration, state, redirect_uri=REDIRECT_URI)
    response = await integration.http.get(url)
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


async def test_connect_flow_exchanges_code_for_a_working_token(make_integration, world,
                                                               autojump_clock):
    """Consent → redirect with our state → code exchange → a refresh token that works."""
    integration = make_integration("DE", credentials={"refresh_token": ""})
    redirect = await _consent(integration, "one-time-state")
    assert redirect["state"] == "one-time-state"
    authorization = await connect.complete(integration, redirect, "one-time-state", REDIRECT_URI)
    assert authorization.seller_id == EU
    assert authorization.refresh_token.startswith("Atzr|")
    assert "Atzr" not in repr(authorization)
    connected = make_integration("DE", account="eu2", credentials={
        "refresh_token": authorization.refresh_token})
    info = await connect.check(connected)
    assert "DE" in info.marketplaces


async def test_connect_with_a_wrong_state_is_refused_before_lwa(make_integration, world,
                                                                autojump_clock):
    """A redirect whose state is not ours never reaches the token endpoint."""
    integration = make_integration("DE", credentials={"refresh_token": ""})
    redirect = await _consent(integration, "the-state-we-sent")
    redirect["state"] = "forged"
    before = len(calls(world, "lwaToken"))
    with pytest.raises(IntegrationAuthFailed, match="state"):
        await connect.complete(integration, redirect, "the-state-we-sent", REDIRECT_URI)
    assert len(calls(world, "lwaToken")) == before
    # the code is still unused: the right state would still have worked
    authorization = await connect.complete(integration, dict(redirect, state="the-state-we-sent"),
                                           "the-state-we-sent", REDIRECT_URI)
    assert authorization.refresh_token


async def test_a_used_code_is_refused(make_integration, autojump_clock):
    integration = make_integration("DE", credentials={"refresh_token": ""})
    redirect = await _consent(integration, "s")
    await connect.complete(integration, redirect, "s", REDIRECT_URI)
    with pytest.raises(IntegrationAuthFailed, match="invalid_grant"):
        await connect.complete(integration, redirect, "s", REDIRECT_URI)


async def test_a_code_pasted_by_hand_is_redeemed(make_integration, autojump_clock):
    """``{"code": ...}`` as the core passes a pasted code: credentials without seller id."""
    integration = make_integration("DE", credentials={"refresh_token": ""})
    redirect = await _consent(integration, "s")
    authorization = await connect.redeem(integration, {"code": redirect["spapi_oauth_code"]},
                                         REDIRECT_URI)
    assert set(authorization.credentials()) == {"refresh_token"}
