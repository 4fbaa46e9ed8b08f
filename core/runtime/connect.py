"""Connecting an integration to the seller's account (OAuth consent), channel-agnostic.

The core owns the flow: it makes and checks the one-time ``state``, serves the callback,
encrypts and stores what the channel gives back, and re-checks the integration. The
plugin only builds the consent URL (``authorization_url``) and redeems the code
(``complete_authorization``).

Stored credentials (encrypted with the ``pii.key``, AAD bound to the account) take
precedence over the YAML's, because they are the newer decision of the seller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from marketsync.core.errors import IntegrationAuthFailed, MarketsyncError
from marketsync.core.domain.pii import PiiCipher
from marketsync.core.store import integrations as store_integrations
from marketsync.core.store import oauth

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.config.schema import Config
    from marketsync.core.runtime.plugins import Plugins
    from marketsync.core.runtime.runner import IntegrationRunner
    from marketsync.core.store import Store
    from marketsync.core.types import Integration

log = logging.getLogger(__name__)


class ConnectHost(Protocol):
    """What the consent flow needs of the daemon: the integrations and their plugins, the
    PII key that seals the credentials, and a way to use new credentials at once."""

    config: "Config"
    store: "Store"
    cipher: PiiCipher | None
    plugins: "Plugins"
    integrations: "dict[str, Integration]"
    runners: "dict[str, IntegrationRunner]"

    def use_credentials(self, account: str, credentials: dict[str, str]) -> None: ...


class ConnectError(MarketsyncError):
    """The connect flow cannot go on; the message says what to do."""


def redirect_uri(daemon: ConnectHost, channel: str) -> str:
    """Where the channel sends the seller back: the daemon's own callback."""
    return f"{daemon.config.http.base_url}/channels/{channel}/callback"


def _aad(account: str) -> str:
    return f"accounts.secret_blob:{account}"


def seal_credentials(cipher: PiiCipher, account: str, credentials: Mapping[str, str]) -> bytes:
    return cipher.seal(json.dumps(dict(credentials), sort_keys=True), _aad(account))


def open_credentials(cipher: PiiCipher | None, account: str, blob: bytes | None) -> dict[str, str]:
    if not blob:
        return {}
    if cipher is None:
        raise ConnectError(f"account {account!r} has stored credentials but no pii.key is "
                           "configured to read them")
    return json.loads(cipher.open(blob, _aad(account)))


def stored_credentials(session, cipher: PiiCipher | None) -> dict[str, dict[str, str]]:
    """Every account's stored credentials, decrypted."""
    from sqlalchemy import select

    from marketsync.core.store.models import Account

    rows = session.execute(select(Account.name, Account.secret_blob)).all()
    return {name: open_credentials(cipher, name, blob) for name, blob in rows if blob}


async def start(daemon: ConnectHost, alias: str) -> str:
    """Create a one-time state and return the consent URL for ``alias``."""
    integration = daemon.integrations[alias]
    hooks = daemon.plugins.channel(integration.channel)
    if not hooks.supports("authorization_url"):
        raise ConnectError(f"channel {integration.channel!r} has no consent flow; put its "
                           "credentials in the configuration")
    if daemon.cipher is None:
        raise ConnectError("set pii.key in the configuration first: the credentials the "
                           "connect brings are stored encrypted with it")
    state = await daemon.store.run(oauth.create, alias)
    return hooks.call_sync("authorization_url", integration=integration, state=state,
                           redirect_uri=redirect_uri(daemon, integration.channel))


async def finish(daemon: ConnectHost, params: Mapping[str, str], *, channel: str | None = None,
                 alias: str | None = None) -> str:
    """Complete a connect from the redirect's parameters (or a pasted code).

    With ``alias`` (a code pasted by hand) the state is checked when given; from the
    callback the state is required and names the integration.
    :returns: the alias that is now connected and checked.
    """
    state = params.get("state", "")
    if state or alias is None:
        try:
            state_alias = await daemon.store.run(oauth.consume, state)
        except oauth.StateRejected as error:
            raise ConnectError(str(error)) from None
        if alias is not None and alias != state_alias:
            raise ConnectError(f"this consent was started for {state_alias!r}, not {alias!r}")
        alias = state_alias
    integration = daemon.integrations.get(alias)
    if integration is None or (channel is not None and integration.channel != channel):
        raise ConnectError(f"no {channel or ''} integration {alias!r} in the configuration")
    hooks = daemon.plugins.channel(integration.channel)
    received = await hooks.call("complete_authorization", integration=integration,
                                params=dict(params),
                                redirect_uri=redirect_uri(daemon, integration.channel))
    credentials = {k: str(v) for k, v in dict(received).items() if v}
    if not credentials:
        raise IntegrationAuthFailed(f"{alias}: the channel returned no credentials")
    await daemon.store.run(_store, integration.account, daemon.cipher, credentials)
    daemon.use_credentials(integration.account, credentials)
    log.info("integration %s: account %s connected; checking it", alias, integration.account)
    return alias


def _store(session, account: str, cipher: PiiCipher, credentials: dict[str, Any]) -> None:
    current = open_credentials(cipher, account,
                               store_integrations.account_secret(session, account))
    merged = {**current, **credentials}
    store_integrations.set_account_secret(session, account,
                                          seal_credentials(cipher, account, merged))
    if merged.get("seller_id"):
        store_integrations.set_seller_id(session, account, merged["seller_id"])


async def finish_connect(daemon: ConnectHost, channel: str, params: Mapping[str, str]) -> str:
    """The HTTP callback: finish, re-check the integration, say what happened (for people)."""
    try:
        alias = await finish(daemon, params, channel=channel)
    except (ConnectError, IntegrationAuthFailed) as error:
        log.warning("connect refused: %s", error)
        return f"not connected: {error}"
    daemon.runners[alias].retry()
    return f"connected {alias}; its credentials are being checked — see the status page"
