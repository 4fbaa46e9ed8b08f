"""The SP-API client: Login-with-Amazon access tokens, one request helper, error mapping.

Every SP-API call of the plugin goes through :meth:`SpApi.call`, so that three rules hold
everywhere:

* **One access token per account.** Integrations of one seller account (US, CA, MX...)
  share ``integration.account_runtime``; the cached token lives there behind a
  ``trio.Lock``, so however many jobs find it about to expire, only the first refreshes
  and the others wait for its answer. The token is put on a request after its rate-limit
  wait (the transport's ``BEFORE_SEND``), so a call queued behind a slowed bucket never
  goes out with a token that expired while it waited.
* **Errors become ``core.errors``.** 401/403 → one refresh and one retry, then
  ``IntegrationAuthFailed``; ``invalid_grant`` from LWA → ``IntegrationAuthFailed``;
  5xx and timeouts → ``TransientError`` (the governed transport has already retried them);
  429 → ``Throttled`` (raised by the transport). Other refusals raise
  :class:`AmazonRequestError` with Amazon's code and message, for the caller to judge.
* **No secrets or buyer data in logs or exceptions.** Messages name the operation, the
  status and Amazon's error code, never a URL query, a header or a body we sent.

Rate limiting is not here: requests are tagged with their operation and the governed
transport (``core/runtime/http.py``) waits for the bucket.
"""

from __future__ import annotations

import gzip
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
from marketsync.core.runtime.http import ALSO_LIMITED_BY, BEFORE_SEND, OPERATION
from marketsync.core.types import Integration
from marketsync.plugins.amazon import marketplaces

LWA_URL = "https://api.amazon.com/auth/o2/token"
LWA_PATH = "/auth/o2/token"
#: Refresh this many seconds before the token's announced expiry (REFERENCE §3.1: ~5 min).
REFRESH_MARGIN = 300.0
#: Seconds an LWA refusal of a refresh token is remembered for the account, so that a
#: wave of jobs does not hammer LWA with a dead token (a new token is asked at once).
REFUSAL_MEMORY = 30.0
USER_AGENT = "marketsync (Language=Python)"
_TOKENS = "amazon.lwa"


class AmazonRequestError(MarketsyncError):
    """Amazon refused a request for a reason that is not auth, rate or availability.

    ``code`` and ``message`` are Amazon's (``errors[0]``); they never contain what we sent.
    """

    def __init__(self, operation: str, status: int, code: str | None, message: str | None):
        self.operation, self.status, self.code = operation, status, code
        self.detail = message or ""
        super().__init__(f"{operation}: HTTP {status} {code or ''}: {self.detail}".strip())


@dataclass
class _TokenCache:
    """The account's access token; ``expires_at`` is on the trio clock (``clock.monotonic``)."""

    lock: trio.Lock = field(default_factory=trio.Lock)
    token: str | None = None
    expires_at: float = -math.inf
    refreshes: int = 0  #: how many times LWA was asked; tests assert one refresh is shared
    #: LWA's last refusal and when (trio clock): tasks that queued behind a refused refresh
    #: get the same answer instead of asking again
    refused: tuple[str, float, str] | None = None

    def fresh(self) -> bool:
        return self.token is not None and clock.monotonic() < self.expires_at - REFRESH_MARGIN


def token_cache(integration: Integration) -> _TokenCache:
    cache = integration.account_runtime.get(_TOKENS)
    if cache is None:
        cache = integration.account_runtime[_TOKENS] = _TokenCache()
    return cache


def endpoint_of(integration: Integration) -> str:
    """The SP-API base URL: ``settings["endpoint"]`` (the simulator), the governed client's
    ``base_url`` when the core set one, else the marketplace's regional host."""
    override = integration.settings.get("endpoint")
    if override:
        return str(override).rstrip("/")
    http = integration.http
    if http is not None and http.base_url.host:
        return str(http.base_url).rstrip("/")
    return marketplaces.endpoint_for(integration.marketplace)


def lwa_url_of(integration: Integration) -> str:
    """Where access tokens come from: Amazon's LWA host, or the simulator's when the
    endpoint is overridden (it serves ``/auth/o2/token`` itself)."""
    explicit = integration.settings.get("lwa_endpoint")
    if explicit:
        return str(explicit)
    endpoint = endpoint_of(integration)
    if endpoint.startswith("https://sellingpartnerapi-") or endpoint.startswith(
        "https://sandbox.sellingpartnerapi-"
    ):
        return LWA_URL
    return endpoint + LWA_PATH


def marketplace_id(integration: Integration) -> str:
    try:
        return marketplaces.MARKETPLACES[integration.marketplace].id
    except KeyError:
        raise IntegrationError(
            f"{integration.alias}: {integration.marketplace!r} is not an Amazon marketplace"
        ) from None


def csv_param(values: Iterable[str]) -> str:
    """SP-API arrays in a query are comma-separated (Swagger 2 ``collectionFormat: csv``)."""
    return ",".join(values)


def first_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """Amazon's ``errors[0]`` code and message, or the OAuth ``error`` pair from LWA."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0].get("code"), errors[0].get("message")
    if "error" in body:
        return str(body.get("error")), body.get("error_description")
    return None, None


class SpApi:
    """SP-API calls for one integration. Cheap: build one per hook call."""

    def __init__(self, integration: Integration):
        if integration.http is None:
            raise IntegrationError(f"{integration.alias}: no HTTP client was given to the plugin")
        self.integration = integration
        self.http: httpx.AsyncClient = integration.http
        self.endpoint = endpoint_of(integration)
        self.marketplace_id = marketplace_id(integration)
        self.log = integration.log

    # -- tokens ---------------------------------------------------------------------------

    @property
    def seller_id(self) -> str:
        seller = self.integration.credentials.get("seller_id")
        if not seller:
            raise IntegrationError(
                f"{self.integration.alias}: credentials.seller_id (the selling partner id) "
                f"is needed to change listings; `marketsync connect` writes it"
            )
        return seller

    async def access_token(self) -> str:
        """A valid access token for the account, refreshing it once for all waiters."""
        cache = token_cache(self.integration)
        if cache.fresh():
            return cache.token  # type: ignore[return-value]
        async with cache.lock:
            if cache.fresh():  # someone else refreshed while we waited
                return cache.token  # type: ignore[return-value]
            grant = self.integration.credentials.get("refresh_token") or ""
            if (cache.refused and cache.refused[2] == grant
                    and clock.monotonic() - cache.refused[1] < REFUSAL_MEMORY):
                raise IntegrationAuthFailed(cache.refused[0])
            try:
                await self._refresh(cache)
            except IntegrationAuthFailed as exc:
                cache.refused = (str(exc), clock.monotonic(), grant)
                raise
            cache.refused = None
            return cache.token  # type: ignore[return-value]

    def _invalidate(self, used: str) -> None:
        """Forget ``used`` unless another task already replaced it (one refresh per 403 wave)."""
        cache = token_cache(self.integration)
        if cache.token == used:
            cache.expires_at = -math.inf

    async def _refresh(self, cache: _TokenCache) -> None:
        credentials = self.integration.credentials
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            raise IntegrationAuthFailed(
                f"{self.integration.alias}: no refresh token yet; run `marketsync connect "
                f"{self.integration.alias}` or put a self-authorized token in the config"
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": credentials.get("client_id", ""),
            "client_secret": credentials.get("client_secret", ""),
        }
        body = await self.lwa(form)
        token, lifetime = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not token:
            raise TransientError("Login with Amazon answered without an access_token")
        try:
            lifetime = float(lifetime)
        except (TypeError, ValueError):
            lifetime = 3600.0
        cache.refreshes += 1
        cache.token, cache.expires_at = token, clock.monotonic() + lifetime
        self.log.debug("access token refreshed for account %s", self.integration.account)

    async def lwa(self, form: Mapping[str, str]) -> dict[str, Any]:
        """POST to the LWA token endpoint; refusals of our grant are auth failures."""
        try:
            response = await self.http.post(lwa_url_of(self.integration), data=dict(form))
        except httpx.TransportError as exc:
            raise TransientError(f"Login with Amazon unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise TransientError(f"Login with Amazon: HTTP {response.status_code}")
        if response.status_code != 200:
            code, description = first_error(response)
            raise IntegrationAuthFailed(
                f"Login with Amazon refused the grant ({code or response.status_code}"
                f"{': ' + description if description else ''}); re-authorize the app"
            )
        try:
            body = response.json()
        except ValueError:
            raise TransientError("Login with Amazon answered with something that is not JSON")
        return body if isinstance(body, dict) else {}

    # -- calls -----------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        expect: Iterable[int] = (200,),
        also_limited_by: tuple[str, ...] = (),
    ) -> httpx.Response:
        """Send one SP-API request and return the response when its status is expected.

        ``also_limited_by`` names limits Amazon publishes on top of the operation's own
        plan (``manifest.LISTINGS_FEED_LIMIT``); the call waits for each.

        :raises IntegrationAuthFailed: 401/403 twice (the second after a token refresh).
        :raises TransientError: 5xx or a network failure that outlived the transport's retries.
        :raises AmazonRequestError: any other unexpected status.
        """
        expected = frozenset(expect)
        url = self.endpoint + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in (1, 2):
            sent = [await self.access_token()]

            async def authorize(request: httpx.Request) -> None:
                # after the rate-limit wait: the token taken before it may have expired
                token = await self.access_token()
                request.headers["x-amz-access-token"] = token
                request.headers["x-amz-date"] = clock.now().strftime("%Y%m%dT%H%M%SZ")
                sent.append(token)

            headers = {
                "x-amz-access-token": sent[0],
                "x-amz-date": clock.now().strftime("%Y%m%dT%H%M%SZ"),
                "user-agent": USER_AGENT,
            }
            try:
                response = await self.http.request(
                    method, url, params=query, json=json, headers=headers,
                    extensions={OPERATION: operation, BEFORE_SEND: authorize,
                                ALSO_LIMITED_BY: also_limited_by},
                )
            except httpx.TransportError as exc:
                raise TransientError(f"{operation}: {type(exc).__name__}") from None
            if response.status_code in expected:
                return response
            if response.status_code in (401, 403):
                self._invalidate(sent[-1])
                if attempt == 1:
                    self.log.info("%s: HTTP %d, refreshing the access token once",
                                  operation, response.status_code)
                    continue
                code, _ = first_error(response)
                raise IntegrationAuthFailed(
                    f"{operation}: Amazon refused the access token (HTTP "
                    f"{response.status_code} {code or ''}) after a refresh; the app may "
                    f"have lost its authorization or a role".replace("  ", " ")
                )
            if response.status_code >= 500:
                raise TransientError(f"{operation}: HTTP {response.status_code}")
            code, message = first_error(response)
            raise AmazonRequestError(operation, response.status_code, code, message)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(self, path: str, operation: str, **kwargs: Any) -> Any:
        response = await self.call("GET", path, operation, **kwargs)
        return _json(response, operation)

    async def send_json(self, method: str, path: str, operation: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, operation, **kwargs)
        if not response.content:
            return {}
        return _json(response, operation)

    # -- documents (presigned S3 URLs: no SP-API token, no bucket) --------------------------

    async def upload(self, url: str, content: bytes, content_type: str) -> None:
        try:
            response = await self.http.put(url, content=content,
                                           headers={"content-type": content_type})
        except httpx.TransportError as exc:
            raise TransientError(f"feed document upload: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise TransientError(f"feed document upload: HTTP {response.status_code}")

    async def download(self, url: str, compression: str | None) -> bytes:
        try:
            response = await self.http.get(url)
        except httpx.TransportError as exc:
            raise TransientError(f"document download: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise TransientError(f"document download: HTTP {response.status_code}")
        content = response.content
        if compression == "GZIP" and content[:2] == b"\x1f\x8b":  # httpx did not inflate it
            content = gzip.decompress(content)
        return content


def _json(response: httpx.Response, operation: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TransientError(f"{operation}: the answer was not JSON") from None
