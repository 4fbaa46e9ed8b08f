"""The eBay REST client: OAuth user tokens, one request helper, error mapping.

Every eBay call of the plugin goes through :meth:`EbayApi.call`, so that these rules hold
everywhere:

* **One user token per account.** The integrations of one account (US, GB, DE...) share
  ``integration.account_runtime``; the access token (two hours) is refreshed five minutes
  before it expires, once for all waiters, behind a ``trio.Lock``.
* **The marketplace travels in a header.** ``X-EBAY-C-MARKETPLACE-ID`` names the
  integration's marketplace on every call.
* **Errors become ``core.errors``.** 401 → one refresh and one retry, then
  ``IntegrationAuthFailed``; ``invalid_grant`` from the token endpoint →
  ``IntegrationAuthFailed``; 5xx and network failures → ``TransientError`` (the governed
  transport has retried them); 429 and a spent daily quota → ``Throttled``. Other refusals
  raise :class:`EbayRequestError` with eBay's errorId and message.
* **No secrets or buyer data in logs or exceptions.** Messages name the operation, the
  status and eBay's error id, never a URL query, a header or a body we sent.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from marketsync.core import clock
from marketsync.core.errors import (
    IntegrationAuthFailed,
    IntegrationError,
    MarketsyncError,
    TransientError,
)
from marketsync.core.runtime.http import OPERATION
from marketsync.core.types import Integration
from marketsync.plugins.ebay.manifest import MARKETPLACES

API_HOST = "https://api.ebay.com"
APIZ_HOST = "https://apiz.ebay.com"  #: Commerce Identity lives here
AUTH_HOST = "https://auth.ebay.com"
TOKEN_PATH = "/identity/v1/oauth2/token"
#: what marketsync asks the seller to grant
SCOPES = ("https://api.ebay.com/oauth/api_scope",
          "https://api.ebay.com/oauth/api_scope/sell.inventory",
          "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
          "https://api.ebay.com/oauth/api_scope/commerce.identity.readonly")
REFRESH_MARGIN = 300.0
REFUSAL_MEMORY = 30.0
_TOKENS = "ebay.user_token"


class EbayRequestError(MarketsyncError):
    """eBay refused a request for a reason that is not auth, quota or availability."""

    def __init__(self, operation: str, status: int, error_id: int | None, message: str | None):
        self.operation, self.status, self.error_id = operation, status, error_id
        self.detail = message or ""
        super().__init__(f"{operation}: HTTP {status} {error_id or ''}: {self.detail}".strip())


@dataclass
class _TokenCache:
    lock: trio.Lock = field(default_factory=trio.Lock)
    token: str | None = None
    expires_at: float = -math.inf
    refreshes: int = 0
    refused: tuple[str, float, str] | None = None

    def fresh(self) -> bool:
        return self.token is not None and clock.monotonic() < self.expires_at - REFRESH_MARGIN


def token_cache(integration: Integration) -> _TokenCache:
    cache = integration.account_runtime.get(_TOKENS)
    if cache is None:
        cache = integration.account_runtime[_TOKENS] = _TokenCache()
    return cache


def endpoint_of(integration: Integration, host: str = API_HOST) -> str:
    """``settings["endpoint"]`` (the simulator), the governed client's base URL, or eBay's."""
    override = integration.settings.get("endpoint")
    if override:
        return str(override).rstrip("/")
    http = integration.http
    if http is not None and http.base_url.host:
        return str(http.base_url).rstrip("/")
    return host


def marketplace_id(integration: Integration) -> str:
    try:
        return MARKETPLACES[integration.marketplace].id
    except KeyError:
        raise IntegrationError(f"{integration.alias}: {integration.marketplace!r} is not an "
                               f"eBay marketplace") from None


def first_error(response: httpx.Response) -> tuple[Any, str | None]:
    """eBay's ``errors[0]`` (errorId, message), or the OAuth ``error`` pair."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0].get("errorId"), errors[0].get("message")
    if "error" in body:
        return body.get("error"), body.get("error_description")
    return None, None


class EbayApi:
    """eBay calls for one integration. Cheap: build one per hook call."""

    def __init__(self, integration: Integration):
        if integration.http is None:
            raise IntegrationError(f"{integration.alias}: no HTTP client was given to the plugin")
        self.integration = integration
        self.http: httpx.AsyncClient = integration.http
        self.endpoint = endpoint_of(integration)
        self.marketplace_id = marketplace_id(integration)
        self.log = integration.log

    # -- tokens ---------------------------------------------------------------------------

    def _basic(self) -> str:
        credentials = self.integration.credentials
        pair = f"{credentials.get('client_id', '')}:{credentials.get('client_secret', '')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    async def token_request(self, form: Mapping[str, str]) -> dict[str, Any]:
        """POST to the OAuth token endpoint; a refusal of our grant is an auth failure."""
        try:
            response = await self.http.post(
                endpoint_of(self.integration, API_HOST) + TOKEN_PATH, data=dict(form),
                headers={"authorization": self._basic()})
        except httpx.TransportError as exc:
            raise TransientError(f"eBay OAuth unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise TransientError(f"eBay OAuth: HTTP {response.status_code}")
        if response.status_code != 200:
            code, description = first_error(response)
            raise IntegrationAuthFailed(
                f"eBay refused the grant ({code or response.status_code}"
                f"{': ' + description if description else ''}); connect the account again")
        try:
            body = response.json()
        except ValueError:
            raise TransientError("eBay OAuth answered with something that is not JSON") from None
        return body if isinstance(body, dict) else {}

    async def access_token(self) -> str:
        cache = token_cache(self.integration)
        if cache.fresh():
            return cache.token  # type: ignore[return-value]
        async with cache.lock:
            if cache.fresh():
                return cache.token  # type: ignore[return-value]
            grant = self.integration.credentials.get("refresh_token") or ""
            if (cache.refused and cache.refused[2] == grant
                    and clock.monotonic() - cache.refused[1] < REFUSAL_MEMORY):
                raise IntegrationAuthFailed(cache.refused[0])
            if not grant:
                raise IntegrationAuthFailed(
                    f"{self.integration.alias}: no refresh token yet; run `marketsync connect "
                    f"{self.integration.alias}`")
            try:
                body = await self.token_request({"grant_type": "refresh_token",
                                                 "refresh_token": grant,
                                                 "scope": " ".join(SCOPES)})
            except IntegrationAuthFailed as exc:
                cache.refused = (str(exc), clock.monotonic(), grant)
                raise
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise TransientError("eBay OAuth answered without an access_token")
            try:
                lifetime = float(body.get("expires_in", 7200))
            except (TypeError, ValueError):
                lifetime = 7200.0
            cache.refused = None
            cache.refreshes += 1
            cache.token, cache.expires_at = token, clock.monotonic() + lifetime
            return token

    def _invalidate(self, used: str) -> None:
        cache = token_cache(self.integration)
        if cache.token == used:
            cache.expires_at = -math.inf

    # -- calls -----------------------------------------------------------------------------

    async def call(self, method: str, path: str, operation: str, *,
                   params: Mapping[str, Any] | None = None, json: Any = None,
                   expect: Iterable[int] = (200,), host: str = API_HOST) -> httpx.Response:
        """Send one eBay request; return the response when its status is expected.

        ``host`` is eBay's host for the API (Commerce Identity lives on ``apiz``); an
        overridden endpoint (the simulator) serves every API."""
        expected = frozenset(expect)
        base = endpoint_of(self.integration, host)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in (1, 2):
            token = await self.access_token()
            headers = {"authorization": f"Bearer {token}",
                       "x-ebay-c-marketplace-id": self.marketplace_id,
                       "accept": "application/json"}
            if json is not None:
                headers["content-type"] = "application/json"
            try:
                response = await self.http.request(method, base + path, params=query,
                                                   json=json, headers=headers,
                                                   extensions={OPERATION: operation})
            except httpx.TransportError as exc:
                raise TransientError(f"{operation}: {type(exc).__name__}") from None
            if response.status_code in expected:
                return response
            if response.status_code == 401:
                self._invalidate(token)
                if attempt == 1:
                    self.log.info("%s: HTTP 401, refreshing the access token once", operation)
                    continue
                raise IntegrationAuthFailed(f"{operation}: eBay refused the access token after "
                                            f"a refresh; the seller may have revoked consent")
            if response.status_code >= 500:
                raise TransientError(f"{operation}: HTTP {response.status_code}")
            code, message = first_error(response)
            raise EbayRequestError(operation, response.status_code, code, message)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(self, path: str, operation: str, **kwargs: Any) -> Any:
        return _json(await self.call("GET", path, operation, **kwargs), operation)

    async def post_json(self, path: str, operation: str, body: Any, **kwargs: Any) -> Any:
        response = await self.call("POST", path, operation, json=body, **kwargs)
        return _json(response, operation) if response.content else {}


def _json(response: httpx.Response, operation: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TransientError(f"{operation}: the answer was not JSON") from None
