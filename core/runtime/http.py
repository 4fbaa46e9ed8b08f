"""The governed httpx transport: every tagged request waits for its rate-limit token.

Plugins do plain httpx calls and only say which operation a request is::

    await integration.http.get(url, extensions={OPERATION: "searchOrders"})

The transport turns that into policy the host owns (STYLE.md): acquire a token from the
:class:`~marketsync.core.runtime.governor.Governor` at the running job's priority, send, let the
governor learn from the response, retry 429s (the emptied bucket makes the retry wait) and
5xx / timeouts (exponential back-off with jitter), and finally raise the typed errors the
scheduler understands. Untagged requests (the LWA token endpoint, presigned document
downloads) pass straight through, but are still counted.

Nothing here logs or raises with a URL query or a header value: both can carry tokens.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import trio

from marketsync.core import clock
from marketsync.core.errors import Throttled, TransientError
from marketsync.core.runtime.governor import Governor
from marketsync.core.types import UsagePlan

log = logging.getLogger("marketsync.http")

#: The request extension naming the operation, e.g. ``extensions={OPERATION: "getFeed"}``.
OPERATION = "operation"
#: The request extension for ``async def prepare(request)``, awaited right before each
#: attempt goes out, after its rate-limit wait. Credentials that expire (an access token)
#: belong there: a call queued for minutes behind a slowed bucket, or sent again after a
#: 429, must not carry a token that died while it waited.
BEFORE_SEND = "before_send"
#: The request extension naming further limits a call must also pass, as a tuple of plan
#: names the channel's usage plans define, e.g. ``{OPERATION: "createFeed",
#: ALSO_LIMITED_BY: ("JSON_LISTINGS_FEED",)}``. Some channels publish a second limit on
#: top of an operation's own (Amazon: five listings feeds per five minutes per region,
#: whatever ``createFeed``'s plan allows); the call waits for a token of each. Only the
#: operation's own bucket learns from the response: the header reports that one.
ALSO_LIMITED_BY = "also_limited_by"

#: Statuses worth sending again: the server said it might work a moment later.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: Failures below HTTP worth sending again (the request may not have arrived at all).
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One logical call (all its attempts), for metrics."""

    operation: str | None  #: None for untagged, ungoverned requests
    status: int | None  #: the last status received; None when no response came
    started: datetime  #: aware UTC, from core.clock
    elapsed: float  #: seconds, waiting for tokens and back-offs included
    throttled: bool  #: a 429 was received on the way
    retries: int  #: attempts after the first


class GovernedTransport(httpx.AsyncBaseTransport):
    """Wraps an inner transport with the governor, bounded retries and typed errors.

    :param inner: ``httpx.AsyncHTTPTransport`` in production, ``httpx.ASGITransport`` in tests.
    :param bucket_for: operation -> governor key; None sends the call ungoverned (still
        retried). Usually closes over the integration (channel, account, marketplace).
    :param plan_for: operation -> its published usage plan, used to define the bucket.
    :param rate_header: response header carrying the current rate (SP-API
        ``x-amzn-RateLimit-Limit``), or None.
    :param backoff_base: first 5xx back-off in seconds; doubles per retry up to ``backoff_cap``.
    :param rng: source of jitter; a seeded ``random.Random`` makes tests reproducible.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        governor: Governor,
        *,
        bucket_for: Callable[[str], tuple | None],
        plan_for: Callable[[str], UsagePlan | None],
        rate_header: str | None,
        max_5xx_retries: int = 3,
        max_429_retries: int = 5,
        on_call: Callable[[CallRecord], None] | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if max_5xx_retries < 0 or max_429_retries < 0:
            raise ValueError("GovernedTransport retry counts must be >= 0")
        if not 0 < backoff_base <= backoff_cap:
            raise ValueError("GovernedTransport needs 0 < backoff_base <= backoff_cap")
        self._inner = inner
        self._governor = governor
        self._bucket_for = bucket_for
        self._plan_for = plan_for
        self._rate_header = rate_header
        self._max_5xx_retries = max_5xx_retries
        self._max_429_retries = max_429_retries
        self._on_call = on_call
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._rng = rng if rng is not None else random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        operation = request.extensions.get(OPERATION)
        started, start = clock.now(), clock.monotonic()
        if operation is None:
            status = None
            try:
                response = await self._inner.handle_async_request(request)
                status = response.status_code
                return response
            finally:
                elapsed = clock.monotonic() - start
                self._record(CallRecord(None, status, started, elapsed, False, 0))
        if not isinstance(operation, str) or not operation:
            raise TypeError(f"request extension {OPERATION!r} must be a non-empty str")
        call = _Call(operation)
        try:
            return await self._send(request, call)
        finally:
            self._record(
                CallRecord(
                    operation,
                    call.status,
                    started,
                    clock.monotonic() - start,
                    call.throttled,
                    call.attempts - 1 if call.attempts else 0,
                )
            )

    async def _send(self, request: httpx.Request, call: _Call) -> httpx.Response:
        key = self._bucket(call.operation)
        extra = self._extra_buckets(request, call.operation)
        await request.aread()  # the body must be re-sendable on retry
        throttles = failures = 0
        while True:
            # the further limits first: a token of the operation's own bucket is not held
            # (and lost to others) while the stricter limit is waited for
            for extra_key in extra:
                await self._governor.acquire(extra_key)
            if key is not None:
                await self._governor.acquire(key)
            prepare = request.extensions.get(BEFORE_SEND)
            if prepare is not None:
                await prepare(request)
            call.attempts += 1
            try:
                response = await self._inner.handle_async_request(request)
            except RETRY_ERRORS as error:
                call.status = None
                failures += 1
                what = type(error).__name__
                if failures > self._max_5xx_retries:
                    raise TransientError(
                        f"{call.operation}: {what} after {call.attempts} attempts"
                    ) from None
                log.info(
                    "%s: %s, retrying (%d/%d)", call.operation, what, failures,
                    self._max_5xx_retries,
                )
                await self._back_off(failures)
                continue
            call.status = response.status_code
            if key is not None:
                await self._governor.observe(
                    key, response.status_code, response.headers, self._rate_header
                )
            if response.status_code == 429:
                call.throttled = True
                throttles += 1
                await response.aclose()
                if throttles > self._max_429_retries:
                    state = self._governor.state(key) if key is not None else None
                    raise Throttled(
                        f"{call.operation}: HTTP 429 after {call.attempts} attempts",
                        retry_after=1.0 / state.rate if state is not None else None,
                    )
                log.info(
                    "%s: throttled (429), retrying (%d/%d)", call.operation, throttles,
                    self._max_429_retries,
                )
                if key is None:
                    await self._back_off(throttles)
                continue
            if response.status_code in RETRY_STATUSES:
                failures += 1
                await response.aclose()
                if failures > self._max_5xx_retries:
                    raise TransientError(
                        f"{call.operation}: HTTP {response.status_code} "
                        f"after {call.attempts} attempts"
                    )
                log.info(
                    "%s: HTTP %d, retrying (%d/%d)",
                    call.operation, response.status_code, failures, self._max_5xx_retries,
                )
                await self._back_off(failures)
                continue
            log.debug("%s: HTTP %d", call.operation, response.status_code)
            return response

    def _bucket(self, operation: str) -> tuple | None:
        key = self._bucket_for(operation)
        if key is None or key in self._governor:
            return key
        plan = self._plan_for(operation)
        if plan is None:
            raise ValueError(
                f"operation {operation!r} has a rate-limit bucket {key!r} but no usage plan"
            )
        self._governor.define(key, plan.rate, plan.burst)
        if plan.daily is not None:
            self._governor.define_quota(key, plan.daily)
        return key

    def _extra_buckets(self, request: httpx.Request, operation: str) -> list[tuple]:
        names = request.extensions.get(ALSO_LIMITED_BY) or ()
        if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"request extension {ALSO_LIMITED_BY!r} must be a tuple of "
                            f"non-empty str (on {operation})")
        keys = []
        for name in names:
            key = self._bucket(name)
            if key is None:
                raise ValueError(f"{operation}: further limit {name!r} has no rate-limit "
                                 "bucket")
            keys.append(key)
        return keys

    def backoff_delay(self, failure: int) -> float:
        """Seconds to wait before retry number ``failure`` (1-based): half of the
        exponential step fixed, half random ("equal jitter"), so that clients failing
        together do not retry together but never retry immediately."""
        step = min(self._backoff_cap, self._backoff_base * 2 ** (failure - 1))
        return step / 2 + self._rng.uniform(0, step / 2)

    async def _back_off(self, failure: int) -> None:
        await trio.sleep(self.backoff_delay(failure))

    def _record(self, record: CallRecord) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(record)
        except Exception:  # metrics must never break a call
            log.exception("on_call hook failed for %s", record.operation)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(slots=True)
class _Call:
    operation: str
    status: int | None = None
    throttled: bool = False
    attempts: int = 0


def make_client(
    inner: httpx.AsyncBaseTransport,
    governor: Governor,
    *,
    bucket_for: Callable[[str], tuple | None],
    plan_for: Callable[[str], UsagePlan | None],
    rate_header: str | None,
    base_url: str | None = None,
    timeout: float | httpx.Timeout = 30.0,
    headers: Mapping[str, str] | None = None,
    **transport_options: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request goes through a :class:`GovernedTransport`.

    ``transport_options`` are passed on (``max_5xx_retries``, ``on_call``, ``rng``...).
    """
    transport = GovernedTransport(
        inner,
        governor,
        bucket_for=bucket_for,
        plan_for=plan_for,
        rate_header=rate_header,
        **transport_options,
    )
    return httpx.AsyncClient(
        transport=transport, base_url=base_url or "", timeout=timeout, headers=headers
    )
