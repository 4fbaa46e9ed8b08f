"""The governed transport against a tiny scripted ASGI server, under MockClock."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
import trio
import trio.testing

from marketsync.core.errors import Throttled, TransientError
from marketsync.core.runtime.governor import Governor, current_priority
from marketsync.core.runtime.http import (
    ALSO_LIMITED_BY,
    BEFORE_SEND,
    OPERATION,
    CallRecord,
    GovernedTransport,
    make_client,
)
from marketsync.core.types import Priority, UsagePlan

RATE_HEADER = "x-amzn-RateLimit-Limit"
SECRET = "Atza|very-secret-access-token"


@dataclass
class Seen:
    path: str
    at: float
    body: bytes
    status: int


@dataclass
class FakeChannel:
    """A channel API in a few lines: per path, a script of statuses (the last repeats),
    optionally a token bucket it enforces with 429s and a rate it reports in a header."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    reported_rate: str | None = None
    bucket: tuple[float, int] | None = None  #: (rate, burst) enforced on every path
    seen: list[Seen] = field(default_factory=list)
    _calls: Counter[str] = field(default_factory=Counter)
    _tokens: float = 0.0
    _last: float | None = None

    def _admit(self, now: float) -> bool:
        rate, burst = self.bucket  # type: ignore[misc]
        if self._last is None:
            self._tokens, self._last = float(burst), now
        self._tokens = min(float(burst), self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens >= 1.0 - 1e-9:  # float slack only; a real server has more
            self._tokens -= 1.0
            return True
        return False

    async def __call__(self, scope, receive, send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = trio.current_time()
        path = scope["path"]
        script = self.scripts.get(path, [200])
        status = script[min(self._calls[path], len(script) - 1)]
        self._calls[path] += 1
        if self.bucket is not None and status == 200 and not self._admit(now):
            status = 429
        self.seen.append(Seen(path, now, body, status))
        headers = [(b"content-type", b"application/json")]
        if self.reported_rate is not None and status == 200:
            headers.append((RATE_HEADER.encode(), self.reported_rate.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps({"path": path}).encode()})

    def attempts(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


class FailingTransport(httpx.AsyncBaseTransport):
    """Raises a transport error for the first ``failures`` requests, then delegates."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int, error: type[Exception]):
        self.inner, self.failures, self.error, self.calls = inner, failures, error, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error("connection refused", request=request)
        return await self.inner.handle_async_request(request)


PLANS = {
    "searchOrders": UsagePlan(operation="searchOrders", rate=1.0, burst=5),
    "getFeed": UsagePlan(operation="getFeed", rate=2.0, burst=15),
    "getInventorySummaries": UsagePlan(operation="getInventorySummaries", rate=5.0, burst=15),
}


def client_for(
    channel: FakeChannel | httpx.AsyncBaseTransport,
    governor: Governor,
    *,
    plans: dict[str, UsagePlan] = PLANS,
    seed: int = 7,
    records: list[CallRecord] | None = None,
    **options,
) -> httpx.AsyncClient:
    inner = channel
    if not isinstance(channel, httpx.AsyncBaseTransport):
        inner = httpx.ASGITransport(channel)
    return make_client(
        inner,
        governor,
        bucket_for=lambda operation: ("fake", "main", operation),
        plan_for=plans.get,
        rate_header=RATE_HEADER,
        base_url="https://channel.test",
        rng=random.Random(seed),
        on_call=records.append if records is not None else None,
        **options,
    )


def key(operation: str) -> tuple:
    return ("fake", "main", operation)


def jitter(seed: int, retries: int, base: float = 0.5) -> list[float]:
    """The delays a transport seeded with ``seed`` sleeps, computed independently."""
    rng = random.Random(seed)
    delays = []
    for retry in range(1, retries + 1):
        step = base * 2 ** (retry - 1)
        delays.append(step / 2 + rng.uniform(0, step / 2))
    return delays


async def test_429_retries_wait_for_the_emptied_bucket(autojump_clock):
    """429, 429, 200: each 429 drains the bucket and slows it, so the retries wait."""
    channel = FakeChannel(scripts={"/orders": [429, 429, 200]})
    governor = Governor()
    records: list[CallRecord] = []
    async with client_for(channel, governor, records=records) as client:
        response = await client.get("/orders", extensions={OPERATION: "searchOrders"})
    assert response.status_code == 200 and response.json() == {"path": "/orders"}
    # plan 1/s: the first 429 halves it (next token 2 s later), the second, one slowed
    # interval later, halves it again (4 s more)
    assert [seen.at for seen in channel.attempts("/orders")] == [0.0, 2.0, 6.0]
    state = governor.state(key("searchOrders"))
    assert (state.throttled, state.acquired) == (2, 3)
    assert 1.0 < state.penalty < 4.0  # the final 200 started the recovery
    [record] = records
    assert (record.operation, record.status, record.throttled, record.retries) == (
        "searchOrders", 200, True, 2,
    )
    assert record.elapsed == pytest.approx(6.0)


async def test_a_429_empties_the_bucket_and_exhausted_retries_raise_throttled(autojump_clock):
    channel = FakeChannel(scripts={"/orders": [429]})
    governor = Governor()
    async with client_for(channel, governor, max_429_retries=0) as client:
        with pytest.raises(Throttled, match="searchOrders: HTTP 429 after 1 attempts") as caught:
            await client.get("/orders", extensions={OPERATION: "searchOrders"})
    state = governor.state(key("searchOrders"))
    assert state.tokens == 0.0 and state.throttled == 1 and state.rate == 0.5
    assert caught.value.retry_after == pytest.approx(2.0)
    assert governor.has_capacity(key("searchOrders")) is False


async def test_429_retries_are_bounded(autojump_clock):
    channel = FakeChannel(scripts={"/orders": [429]})
    async with client_for(channel, Governor(), max_429_retries=3) as client:
        with pytest.raises(Throttled, match="after 4 attempts"):
            await client.get("/orders", extensions={OPERATION: "searchOrders"})
    assert len(channel.attempts("/orders")) == 4


async def test_503_then_200_is_retried_after_a_jittered_back_off(autojump_clock):
    channel = FakeChannel(scripts={"/feed": [503, 200]})
    records: list[CallRecord] = []
    async with client_for(channel, Governor(), records=records, seed=11) as client:
        response = await client.get("/feed", extensions={OPERATION: "getFeed"})
    assert response.status_code == 200
    [first, second] = channel.attempts("/feed")
    [delay] = jitter(11, 1)
    assert 0.25 <= delay <= 0.5
    assert second.at - first.at == pytest.approx(delay, abs=1e-9)
    assert (records[0].status, records[0].retries, records[0].throttled) == (200, 1, False)


async def test_always_500_raises_transient_error_after_bounded_jittered_retries(autojump_clock):
    """Four attempts, three growing jittered sleeps, then an error naming only the
    operation and status (the URL query may hold a token)."""
    channel = FakeChannel(scripts={"/feed": [500]})
    records: list[CallRecord] = []
    async with client_for(channel, Governor(), records=records, seed=3) as client:
        with pytest.raises(TransientError) as caught:
            await client.get(
                "/feed",
                params={"token": SECRET},
                headers={"Authorization": f"Bearer {SECRET}"},
                extensions={OPERATION: "getFeed"},
            )
    assert str(caught.value) == "getFeed: HTTP 500 after 4 attempts"
    assert not isinstance(caught.value, Throttled)
    times = [seen.at for seen in channel.attempts("/feed")]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    expected = jitter(3, 3)
    assert gaps == pytest.approx(expected, abs=1e-9)
    for retry, gap in enumerate(gaps, start=1):
        step = 0.5 * 2 ** (retry - 1)
        assert step / 2 <= gap <= step
    assert (records[0].status, records[0].retries) == (500, 3)


async def test_jitter_differs_between_clients_but_stays_in_its_window():
    transports = [
        GovernedTransport(
            httpx.ASGITransport(FakeChannel()),
            Governor(),
            bucket_for=lambda operation: None,
            plan_for=PLANS.get,
            rate_header=None,
            rng=random.Random(seed),
            backoff_cap=4.0,
        )
        for seed in range(5)
    ]
    delays = [transport.backoff_delay(3) for transport in transports]
    assert len(set(delays)) == 5
    assert all(1.0 <= delay <= 2.0 for delay in delays)
    assert all(2.0 <= transports[0].backoff_delay(10) <= 4.0 for _ in range(20))  # capped


async def test_connection_errors_are_retried_then_raise_transient_error(autojump_clock):
    channel = FakeChannel()
    flaky = FailingTransport(httpx.ASGITransport(channel), failures=2, error=httpx.ConnectError)
    async with client_for(flaky, Governor()) as client:
        response = await client.get("/feed", extensions={OPERATION: "getFeed"})
    assert response.status_code == 200 and flaky.calls == 3
    assert trio.current_time() == pytest.approx(sum(jitter(7, 2)), abs=1e-9)

    dead = FailingTransport(httpx.ASGITransport(channel), failures=99, error=httpx.ReadTimeout)
    async with client_for(dead, Governor(), max_5xx_retries=2) as client:
        with pytest.raises(TransientError, match=r"^getFeed: ReadTimeout after 3 attempts$"):
            await client.get("/feed", params={"t": SECRET}, extensions={OPERATION: "getFeed"})
    assert dead.calls == 3


async def test_the_request_body_is_sent_again_on_retry(autojump_clock):
    channel = FakeChannel(scripts={"/feeds": [503, 502, 200]})
    payload = {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": ["A1PA6795UKMFR9"]}

    async def streamed():
        yield json.dumps(payload).encode()  # a one-shot stream: must be read once and kept

    async with client_for(channel, Governor()) as client:
        response = await client.post(
            "/feeds", content=streamed(), extensions={OPERATION: "getFeed"}
        )
    assert response.status_code == 200
    bodies = [json.loads(seen.body) for seen in channel.attempts("/feeds")]
    assert bodies == [payload, payload, payload]


async def test_the_reported_rate_header_adapts_the_bucket(autojump_clock):
    channel = FakeChannel(reported_rate="0.5")
    governor = Governor()
    async with client_for(channel, governor) as client:
        await client.get("/feed", extensions={OPERATION: "getFeed"})
    state = governor.state(key("getFeed"))
    assert (state.base_rate, state.rate, state.burst) == (0.5, 0.5, 15)


async def test_untagged_requests_pass_ungoverned_but_are_counted(autojump_clock):
    """The token endpoint carries no operation: no bucket, no retry, still a record."""
    channel = FakeChannel(scripts={"/auth/o2/token": [503, 200]})
    governor = Governor()
    records: list[CallRecord] = []
    async with client_for(channel, governor, records=records) as client:
        first = await client.post("/auth/o2/token", data={"refresh_token": SECRET})
        second = await client.post("/auth/o2/token", data={"refresh_token": SECRET})
    assert (first.status_code, second.status_code) == (503, 200)
    assert len(governor) == 0 and trio.current_time() == 0.0
    assert [(r.operation, r.status, r.retries) for r in records] == [(None, 503, 0), (None, 200, 0)]


async def test_a_1000_request_burst_within_the_plan_gets_no_429(autojump_clock):
    """The channel enforces 5/s burst 15; with the matching plan, 1,000 concurrent calls
    all succeed first time and take exactly (1000 - 15) / 5 = 197 s."""
    channel = FakeChannel(bucket=(5.0, 15))
    governor = Governor()
    statuses: list[int] = []
    async with client_for(channel, governor) as client:

        async def call(number: int) -> None:
            response = await client.get(
                f"/inventory/{number}", extensions={OPERATION: "getInventorySummaries"}
            )
            statuses.append(response.status_code)

        async with trio.open_nursery() as nursery:
            for number in range(1000):
                nursery.start_soon(call, number)
    assert statuses == [200] * 1000
    assert [seen.status for seen in channel.seen].count(429) == 0
    assert len(channel.seen) == 1000
    assert trio.current_time() == pytest.approx(197.0, abs=1e-6)
    assert governor.state(key("getInventorySummaries")).throttled == 0


async def test_control_a_plan_faster_than_the_channel_does_get_429s(autojump_clock):
    """The fake channel really throttles: a plan twice too fast is corrected by 429s."""
    channel = FakeChannel(bucket=(5.0, 15))
    governor = Governor()
    fast = dict(PLANS, getInventorySummaries=UsagePlan(operation="x", rate=10.0, burst=15))
    async with client_for(channel, governor, plans=fast, max_429_retries=50) as client:
        for number in range(60):
            await client.get(f"/i/{number}", extensions={OPERATION: "getInventorySummaries"})
    throttled = [seen.status for seen in channel.seen].count(429)
    assert throttled > 0
    assert governor.state(key("getInventorySummaries")).throttled == throttled


async def test_the_job_priority_travels_through_the_transport(autojump_clock):
    """A stock push (URGENT) queued after a backfill still goes first."""
    channel = FakeChannel()
    governor = Governor()
    plans = {"patch": UsagePlan(operation="patch", rate=1.0, burst=1)}
    order: list[str] = []
    async with client_for(channel, governor, plans=plans) as client:
        await client.get("/warm", extensions={OPERATION: "patch"})  # empties the bucket

        async def job(name: str, priority: Priority) -> None:
            current_priority.set(priority)
            await client.get(f"/{name}", extensions={OPERATION: "patch"})
            order.append(name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(job, "backfill", Priority.BACKFILL)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(job, "stock", Priority.URGENT)
    assert order == ["stock", "backfill"]


async def test_no_secret_reaches_the_logs(autojump_clock, caplog):
    channel = FakeChannel(scripts={"/orders": [429, 503, 200]})
    caplog.set_level(logging.DEBUG)
    async with client_for(channel, Governor()) as client:
        await client.get(
            "/orders",
            params={"nextToken": SECRET},
            headers={"x-amz-access-token": SECRET},
            extensions={OPERATION: "searchOrders"},
        )
    ours = [r for r in caplog.records if r.name.startswith("marketsync")]
    assert any("searchOrders" in r.getMessage() for r in ours)
    assert all(SECRET not in r.getMessage() and "nextToken" not in r.getMessage() for r in ours)


async def test_a_failing_metrics_hook_does_not_break_the_call(autojump_clock):
    def broken(record: CallRecord) -> None:
        raise RuntimeError("metrics down")

    async with make_client(
        httpx.ASGITransport(FakeChannel()),
        Governor(),
        bucket_for=lambda operation: ("fake", operation),
        plan_for=PLANS.get,
        rate_header=None,
        on_call=broken,
    ) as client:
        response = await client.get("https://channel.test/x", extensions={OPERATION: "getFeed"})
    assert response.status_code == 200


async def test_an_operation_without_a_plan_is_refused_clearly(autojump_clock):
    async with client_for(FakeChannel(), Governor()) as client:
        with pytest.raises(ValueError, match="'createReport' .* no usage plan"):
            await client.get("/r", extensions={OPERATION: "createReport"})
        with pytest.raises(TypeError, match="non-empty str"):
            await client.get("/r", extensions={OPERATION: 42})


async def test_a_bucket_defined_elsewhere_is_used_as_is(autojump_clock):
    """Two integrations' clients mapping to one key share the bucket and keep its state."""
    governor = Governor()
    governor.define(("fake", "main", "getFeed"), rate=1.0, burst=2)
    channel = FakeChannel()
    async with client_for(channel, governor) as us, client_for(channel, governor) as ca:
        for client in (us, ca, us, ca):
            await client.get("/feed", extensions={OPERATION: "getFeed"})
    assert trio.current_time() == pytest.approx(2.0)  # burst 2, then 1/s (not the plan's 2/15)
    assert governor.state(key("getFeed")).acquired == 4


async def test_before_send_runs_after_the_rate_limit_wait_and_before_every_attempt(autojump_clock):
    """Credentials that expire go on the request once its bucket lets it out (and again on a
    retry), so a long wait in a slowed bucket never sends what was fresh when it queued."""
    channel = FakeChannel(scripts={"/orders": [200, 429, 200]})
    governor = Governor()
    prepared: list[float] = []

    async def stamp(request: httpx.Request) -> None:
        prepared.append(trio.current_time())
        request.headers["x-stamp"] = str(len(prepared))

    async with client_for(channel, governor, plans={
            "searchOrders": UsagePlan(operation="searchOrders", rate=0.01, burst=1)}) as client:
        await client.get("/orders", extensions={OPERATION: "searchOrders"})  # spends the burst
        queued_at = trio.current_time()
        response = await client.get("/orders", extensions={
            OPERATION: "searchOrders", BEFORE_SEND: stamp})
    assert response.status_code == 200
    attempts = channel.attempts("/orders")
    # the second request waited ~100 s for its token; the 429 made it wait again
    assert len(prepared) == 2
    assert prepared[0] >= queued_at + 99
    assert [a.at for a in attempts[1:]] == prepared
    assert prepared[1] > prepared[0]


FEED_PLANS = {
    "createFeed": UsagePlan(operation="createFeed", rate=1.0, burst=15),
    # a second published limit on top of createFeed's own: 2 at once, then 1 per 100 s
    "LISTINGS_FEED": UsagePlan(operation="LISTINGS_FEED", rate=0.01, burst=2),
}


async def test_a_call_also_limited_by_a_second_plan_waits_for_both(autojump_clock):
    """createFeed's own plan would let five calls out at once; the stricter limit named
    with the call spaces them, and a call without it is not held by it."""
    channel = FakeChannel(reported_rate="3")
    governor = Governor()
    async with client_for(channel, governor, plans=FEED_PLANS) as client:
        for _ in range(4):
            await client.post("/feeds", extensions={
                OPERATION: "createFeed", ALSO_LIMITED_BY: ("LISTINGS_FEED",)})
        assert [a.at for a in channel.attempts("/feeds")] == pytest.approx([0, 0, 100, 200])
        before = trio.current_time()
        await client.post("/other", extensions={OPERATION: "createFeed"})
        assert trio.current_time() == pytest.approx(before)
    # the header reports createFeed's rate: only createFeed's bucket learns it
    assert governor.state(key("createFeed")).base_rate == 3.0
    assert governor.state(key("LISTINGS_FEED")).base_rate == 0.01
    assert governor.state(key("LISTINGS_FEED")).acquired == 4


async def test_a_further_limit_must_be_a_tuple_of_plan_names(autojump_clock):
    async with client_for(FakeChannel(), Governor(), plans=FEED_PLANS) as client:
        with pytest.raises(TypeError, match="tuple of non-empty str"):
            await client.post("/feeds", extensions={
                OPERATION: "createFeed", ALSO_LIMITED_BY: "LISTINGS_FEED"})
        with pytest.raises(ValueError, match="'NOPE' .* no usage plan"):
            await client.post("/feeds", extensions={
                OPERATION: "createFeed", ALSO_LIMITED_BY: ("NOPE",)})
