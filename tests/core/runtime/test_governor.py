"""The governor's arithmetic, ordering and adaptation, checked exactly under MockClock."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from marketsync.core.runtime.governor import (
    MAX_PENALTY,
    Governor,
    InProcessBuckets,
    Limits,
    current_priority,
)
from marketsync.core.types import Priority

KEY = ("amazon", "eu-main", "searchOrders")
RATE_HEADER = "x-amzn-RateLimit-Limit"


async def test_thousand_acquisitions_take_exactly_the_refill_time(autojump_clock):
    """1,000 calls at 0.5/s with burst 30 need (1000 - 30) / 0.5 = 1940 s of trio time."""
    governor = Governor()
    governor.define(KEY, rate=0.5, burst=30)
    start = trio.current_time()
    for _ in range(1000):
        await governor.acquire(KEY)
    assert trio.current_time() - start == pytest.approx(1940.0, abs=1e-6)
    assert governor.state(KEY).acquired == 1000


async def test_thousand_concurrent_acquisitions_take_exactly_the_refill_time(autojump_clock):
    """The same arithmetic holds when every call waits at once in the queue."""
    governor = Governor()
    governor.define(KEY, rate=0.5, burst=30)
    start = trio.current_time()
    finished: list[float] = []

    async def call() -> None:
        await governor.acquire(KEY)
        finished.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for _ in range(1000):
            nursery.start_soon(call)
    assert len(finished) == 1000
    assert max(finished) == pytest.approx(1940.0, abs=1e-6)
    assert finished.count(0.0) == 30
    assert governor.state(KEY).waiting == 0


async def test_burst_is_available_immediately_then_one_token_per_interval(autojump_clock):
    """A new bucket starts full; the call after the burst waits exactly 1/rate."""
    governor = Governor()
    governor.define(KEY, rate=0.5, burst=30)
    start = trio.current_time()
    for _ in range(30):
        await governor.acquire(KEY)
    assert trio.current_time() == start
    assert governor.has_capacity(KEY) is False
    await governor.acquire(KEY)
    assert trio.current_time() - start == pytest.approx(2.0, abs=1e-9)


async def test_waiters_are_served_by_priority_then_arrival(autojump_clock):
    """Several waiters arriving together leave in (priority, arrival) order."""
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=1)
    await governor.acquire(KEY)  # empty the bucket so that everyone queues
    served: list[str] = []

    async def call(name: str, priority: Priority) -> None:
        await governor.acquire(KEY, priority)
        served.append(name)

    arrivals = [
        ("backfill-1", Priority.BACKFILL),
        ("products-1", Priority.PRODUCTS),
        ("urgent-1", Priority.URGENT),
        ("orders-1", Priority.ORDERS),
        ("urgent-2", Priority.URGENT),
        ("backfill-2", Priority.BACKFILL),
    ]
    async with trio.open_nursery() as nursery:
        for name, priority in arrivals:
            nursery.start_soon(call, name, priority)
            await trio.testing.wait_all_tasks_blocked()  # fixes the arrival order
        assert governor.state(KEY).waiting == 6
    assert served == ["urgent-1", "urgent-2", "orders-1", "products-1", "backfill-1", "backfill-2"]


async def test_default_priority_comes_from_the_context_variable(autojump_clock):
    """The scheduler sets current_priority per job run; child tasks inherit it."""
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=1)
    await governor.acquire(KEY)
    served: list[Priority] = []

    async def job(priority: Priority) -> None:
        current_priority.set(priority)
        await governor.acquire(KEY)
        served.append(priority)

    async with trio.open_nursery() as nursery:
        for priority in (Priority.BACKFILL, Priority.PRODUCTS, Priority.URGENT):
            nursery.start_soon(job, priority)
            await trio.testing.wait_all_tasks_blocked()
    assert served == [Priority.URGENT, Priority.PRODUCTS, Priority.BACKFILL]


async def test_a_new_urgent_waiter_overtakes_a_sleeping_head(autojump_clock):
    """The first waiter sleeping on its timer steps back when a better waiter arrives."""
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=1)
    await governor.acquire(KEY)
    served: dict[str, float] = {}

    async def call(name: str, priority: Priority) -> None:
        await governor.acquire(KEY, priority)
        served[name] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "backfill", Priority.BACKFILL)
        await trio.sleep(0.5)
        nursery.start_soon(call, "urgent", Priority.URGENT)
    assert served == {"urgent": pytest.approx(1.0), "backfill": pytest.approx(2.0)}


async def _stream_of_urgent_work(governor: Governor, until: float) -> float:
    """Keep URGENT calls arriving twice as fast as the bucket refills; return when the
    BACKFILL waiter was served (math.inf if never within ``until`` seconds)."""
    await governor.acquire(KEY)
    served_at = math.inf

    async def backfill() -> None:
        nonlocal served_at
        await governor.acquire(KEY, Priority.BACKFILL)
        served_at = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(backfill)
        while trio.current_time() < until:
            nursery.start_soon(governor.acquire, KEY, Priority.URGENT)
            await trio.sleep(0.5)
        nursery.cancel_scope.cancel()  # the urgent backlog is not this test's business
    return served_at


async def test_aging_serves_backfill_while_urgent_work_keeps_arriving(autojump_clock):
    """Ranked by arrival + priority * aging_step, BACKFILL waits for at most the urgent
    calls that arrived in its first 3 * aging_step seconds, then goes ahead of newer ones."""
    governor = Governor(aging_step=10.0)
    governor.define(KEY, rate=1.0, burst=1)
    served_at = await _stream_of_urgent_work(governor, until=200.0)
    # 60 urgent calls arrive in [0, 30) and take one second each, then backfill goes.
    assert served_at == pytest.approx(61.0, abs=1e-6)


async def test_without_aging_backfill_would_starve(autojump_clock):
    """Control for the aging test: with a huge aging step the same stream starves it."""
    governor = Governor(aging_step=1e9)
    governor.define(KEY, rate=1.0, burst=1)
    served_at = await _stream_of_urgent_work(governor, until=200.0)
    assert served_at == math.inf


async def test_cancelled_waiters_leave_the_queue_without_taking_a_token(autojump_clock):
    """Cancelling the sleeping head and a queued waiter leaves nothing behind."""
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=1)
    await governor.acquire(KEY)
    served: dict[str, float] = {}

    async def call(name: str, priority: Priority, patience: float) -> None:
        with trio.move_on_after(patience):
            await governor.acquire(KEY, priority)
            served[name] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "head", Priority.URGENT, 0.5)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(call, "middle", Priority.ORDERS, 0.25)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(call, "last", Priority.BACKFILL, 100.0)
        await trio.testing.wait_all_tasks_blocked()
        assert governor.state(KEY).waiting == 3
    # the only token refilled at t=1 goes to the one waiter left, and nobody is queued
    assert served == {"last": pytest.approx(1.0, abs=1e-9)}
    state = governor.state(KEY)
    assert (state.waiting, state.acquired, state.tokens) == (0, 2, pytest.approx(0.0))
    with trio.fail_after(10):  # a stuck queue would wait forever
        await governor.acquire(KEY)
    assert trio.current_time() == pytest.approx(2.0, abs=1e-9)


async def test_429_empties_the_bucket_and_slows_it_down(autojump_clock):
    """A 429 drains the bucket and halves the effective rate until successes return."""
    governor = Governor()
    governor.define(KEY, rate=2.0, burst=10)
    await governor.acquire(KEY)
    await governor.observe(KEY, 429, {}, RATE_HEADER)
    state = governor.state(KEY)
    assert state.tokens == 0.0
    assert (state.throttled, state.penalty, state.rate, state.base_rate) == (1, 2.0, 1.0, 2.0)
    assert governor.has_capacity(KEY) is False
    start = trio.current_time()
    await governor.acquire(KEY)
    assert trio.current_time() - start == pytest.approx(1.0, abs=1e-9)  # 1 / (2.0 / 2)

    penalties = []
    for _ in range(2):  # two successes undo one doubling
        await governor.observe(KEY, 200, {}, RATE_HEADER)
        penalties.append(governor.state(KEY).penalty)
    assert penalties == [pytest.approx(2.0**0.5), 1.0]
    assert governor.state(KEY).rate == 2.0


async def test_429s_from_one_burst_count_as_one_slow_down(autojump_clock):
    """Echoes of the same overload double the penalty once; a later 429 doubles it again."""
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=5)
    for _ in range(4):
        await governor.observe(KEY, 429, {}, None)
    assert (governor.state(KEY).penalty, governor.state(KEY).throttled) == (2.0, 4)
    await trio.sleep(2.0)  # one emission interval at the slowed rate
    await governor.observe(KEY, 429, {}, None)
    assert governor.state(KEY).penalty == 4.0
    for _ in range(10):
        await trio.sleep(100.0)
        await governor.observe(KEY, 429, {}, None)
    assert governor.state(KEY).penalty == MAX_PENALTY


async def test_rate_header_adapts_the_bucket(autojump_clock):
    """A reported rate that differs from the plan replaces it; tokens are kept."""
    governor = Governor()
    governor.define(KEY, rate=2.0, burst=5)
    await governor.observe(KEY, 200, {"X-Amzn-RateLimit-Limit": "0.5"}, RATE_HEADER)
    state = governor.state(KEY)
    assert (state.rate, state.base_rate, state.tokens) == (0.5, 0.5, 5.0)
    for _ in range(5):
        await governor.acquire(KEY)
    start = trio.current_time()
    await governor.acquire(KEY)
    assert trio.current_time() - start == pytest.approx(2.0, abs=1e-9)

    await governor.observe(KEY, 200, {RATE_HEADER: "not a number"}, RATE_HEADER)
    await governor.observe(KEY, 200, {RATE_HEADER: "-1"}, RATE_HEADER)
    await governor.observe(KEY, 200, {RATE_HEADER: "7"}, None)  # channel has no such header
    assert governor.state(KEY).rate == 0.5
    governor.define(KEY, rate=2.0, burst=5)  # same plan again: the learnt rate stays
    assert governor.state(KEY).rate == 0.5
    governor.define(KEY, rate=3.0, burst=5)  # a new plan replaces it
    assert governor.state(KEY).rate == 3.0


async def test_a_faster_reported_rate_wakes_the_waiting_head_early(autojump_clock):
    """The head sleeping for a slow refill recomputes its wait when the rate goes up."""
    governor = Governor()
    governor.define(KEY, rate=0.01, burst=1)
    await governor.acquire(KEY)
    served_at = None

    async def call() -> None:
        nonlocal served_at
        await governor.acquire(KEY)
        served_at = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await trio.sleep(1.0)
        await governor.observe(KEY, 200, {RATE_HEADER: "1.0"}, RATE_HEADER)
    # at t=1 the bucket held 0.01 token; the remaining 0.99 refill at 1/s
    assert served_at == pytest.approx(1.99, abs=1e-9)


async def test_two_keys_are_independent(autojump_clock):
    """Emptying one bucket does not slow the other down."""
    governor = Governor()
    other = ("amazon", "eu-main", "getInventorySummaries")
    governor.define(KEY, rate=0.1, burst=1)
    governor.define(other, rate=2.0, burst=2)
    await governor.acquire(KEY)
    await governor.observe(KEY, 429, {}, None)
    for _ in range(6):
        await governor.acquire(other)
    assert trio.current_time() == pytest.approx(2.0, abs=1e-9)  # (6 - 2) / 2.0
    assert governor.state(other).throttled == 0
    assert governor.has_capacity(KEY) is False


async def test_one_key_shared_by_two_integrations(autojump_clock):
    """Two integrations of one seller account (US, CA) mapped to one key share its tokens."""
    governor = Governor()
    shared = ("amazon", "na-main", "getInventorySummaries")
    governor.define(shared, rate=1.0, burst=10)
    done: dict[str, float] = {}

    async def integration(alias: str) -> None:
        for _ in range(10):
            await governor.acquire(shared)
        done[alias] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(integration, "amazon-us")
        nursery.start_soon(integration, "amazon-ca")
    assert max(done.values()) == pytest.approx(10.0, abs=1e-9)  # (20 - 10) / 1.0
    assert governor.state(shared).acquired == 20


async def test_bad_input_is_refused_with_the_key_named():
    governor = Governor()
    with pytest.raises(ValueError, match="searchOrders.*rate"):
        governor.define(KEY, rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        governor.define(KEY, rate=1.0, burst=0)
    with pytest.raises(TypeError, match="tuple"):
        governor.define("searchOrders", rate=1.0, burst=1)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="define"):
        await governor.acquire(("nobody",))
    governor.define(KEY, rate=1.0, burst=2)
    with pytest.raises(ValueError, match="exceeds the burst 2"):
        await governor.acquire(KEY, cost=3)
    with pytest.raises(ValueError, match="aging_step"):
        Governor(aging_step=0)


async def test_cost_takes_several_tokens(autojump_clock):
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=5)
    await governor.acquire(KEY, cost=5)
    await governor.acquire(KEY, cost=3)
    assert trio.current_time() == pytest.approx(3.0, abs=1e-9)


async def test_snapshot_and_repr_show_live_state(autojump_clock):
    governor = Governor()
    other = ("ebay", "main", "bulkUpdate")
    governor.define(KEY, rate=0.5, burst=3)
    governor.define(other, rate=5.0, burst=10)
    await governor.acquire(KEY)
    await governor.observe(other, 429, {}, None)
    states = {state.key: state for state in governor.snapshot()}
    assert set(states) == {KEY, other}
    assert states[KEY].tokens == pytest.approx(2.0)
    assert (states[KEY].acquired, states[KEY].waiting, states[KEY].burst) == (1, 0, 3)
    assert states[other].throttled == 1
    text = repr(governor)
    assert "2 buckets" in text and "bulkUpdate" in text and "0 waiting" in text
    assert KEY in governor and ("x",) not in governor and len(governor) == 2


async def test_limits_change_keeps_the_tokens_in_the_backend(autojump_clock):
    """The backend converts its state when the limits change instead of refilling."""
    backend = InProcessBuckets()
    now = trio.current_time()
    assert await backend.try_take(KEY, 3, now, Limits(rate=1.0, burst=4)) == 0.0
    assert backend.level(KEY, now, Limits(rate=1.0, burst=4)) == pytest.approx(1.0)
    assert backend.level(KEY, now, Limits(rate=10.0, burst=8)) == pytest.approx(1.0)
    assert await backend.try_take(KEY, 2, now, Limits(rate=10.0, burst=8)) == pytest.approx(0.1)


async def test_a_waiter_larger_than_a_shrunk_burst_fails_instead_of_waiting_forever(
    autojump_clock,
):
    governor = Governor()
    governor.define(KEY, rate=1.0, burst=5)
    await governor.acquire(KEY, cost=5)
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="cost 4 exceeds the burst 2")):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(governor.acquire, KEY, None, 4)
            await trio.sleep(1.0)
            governor.define(KEY, rate=1.0, burst=2)
    assert governor.state(KEY).waiting == 0


async def test_a_rate_margin_keeps_calls_just_off_the_token_boundary(autojump_clock):
    """With a 2 % margin, 100 calls past the burst take 2 % longer than the plan allows:
    never on the exact boundary where the channel's own clock may disagree."""
    governor = Governor(rate_margin=0.02)
    governor.define(("c", "a", "op"), 1.0, 10)
    for _ in range(110):
        await governor.acquire(("c", "a", "op"))
    assert trio.current_time() == pytest.approx(100 / 0.98, abs=1e-6)
