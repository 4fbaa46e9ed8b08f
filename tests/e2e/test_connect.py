"""Connecting an account: consent URL with a one-time state, the callback, stored secrets."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import trio

from marketsync.core.runtime import connect

from marketsync.core.cli import oneshot
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import integrations as store_integrations
from marketsync.plugins.amazon.sandbox import create_app

from .conftest import EU, REFRESH


async def consent(world, url: str) -> dict[str, str]:
    """What the seller's browser does: open the consent URL, follow it back to us."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                 base_url="http://sandbox.local") as browser:
        response = await browser.get(url)
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


async def test_connect_stores_an_encrypted_refresh_token_and_goes_live(make_daemon, world, e2e_clock):
    """No refresh token in the YAML: INCOMPLETE; after consent and callback: LIVE, and the
    token is stored encrypted (not readable in the database)."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")], without_refresh=("eu",))
    state, _ = await oneshot.check(daemon, "amazon-de")
    assert state == IntegrationState.INCOMPLETE.value

    url = await connect.start(daemon, "amazon-de")
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["state"] and query["application_id"]
    redirect = await consent(world, url)
    assert redirect["state"] == query["state"] and redirect["selling_partner_id"] == EU

    message = await connect.finish_connect(daemon, "amazon", redirect)
    assert message.startswith("connected amazon-de")
    state, reason = await oneshot.check(daemon, "amazon-de", prepare=False)
    assert state == IntegrationState.LIVE.value, reason

    blob = await daemon.store.read(store_integrations.account_secret, "eu")
    assert blob and b"Atzr" not in blob  # sealed, not plain
    assert (await daemon.store.read(store_integrations.get_state, "amazon-de")).state == "LIVE"


async def test_a_forged_or_replayed_state_is_refused(make_daemon, world, e2e_clock):
    """A redirect whose state we never issued, or one used already, connects nothing."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")], without_refresh=("eu",))
    await daemon.prepare()
    url = await connect.start(daemon, "amazon-de")
    redirect = await consent(world, url)

    forged = {**redirect, "state": "not-a-state-we-made"}
    assert (await connect.finish_connect(daemon, "amazon", forged)).startswith("not connected")
    assert await daemon.store.read(store_integrations.account_secret, "eu") is None

    assert (await connect.finish_connect(daemon, "amazon", redirect)).startswith("connected")
    replay = await connect.finish_connect(daemon, "amazon", redirect)
    assert replay.startswith("not connected") and "completed already" in replay


async def test_an_expired_state_is_refused(make_daemon, world, e2e_clock):
    """A consent answered after ten minutes must be started again."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")], without_refresh=("eu",))
    await daemon.prepare()
    url = await connect.start(daemon, "amazon-de")
    await trio.sleep(11 * 60)
    with pytest.raises(connect.ConnectError, match="expired"):
        await connect.finish(daemon, await consent(world, url), channel="amazon")


async def test_connect_needs_a_pii_key_to_store_secrets(make_daemon, world, e2e_clock):
    """Without pii.key there is nowhere safe to keep the token: a clear error, nothing stored."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")], without_refresh=("eu",))
    daemon.cipher = None
    await daemon.prepare()
    with pytest.raises(connect.ConnectError, match="pii.key"):
        await connect.start(daemon, "amazon-de")
