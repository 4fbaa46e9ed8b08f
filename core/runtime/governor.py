"""The rate-limit governor: one token bucket per key, shared by every plugin and integration.

Channels such as SP-API publish their limits as token buckets (``rate`` tokens per second
refilling a bucket of ``burst``) and answer 429 when the bucket is empty. Waiting *before*
the call costs nothing; a 429 costs a round trip, a retry and, on Amazon, a slower dynamic
plan. So every governed call first awaits a token here.

Design (see research/aesthetics.md §3 and §8.6):

* **Lazy refill.** No task per bucket: the level is computed from ``trio.current_time()``
  whenever a bucket is touched (aiolimiter), so arithmetic is exact under ``MockClock``.
* **Algorithm apart from storage.** The token arithmetic lives behind :class:`BucketBackend`
  (GCRA, one timestamp per key). The in-process backend is the default; a PostgreSQL
  backend can implement the same three calls with the single-statement GCRA of
  research/wave2.md §3.4 so that several replicas share a bucket.
  Waiters are always ordered locally, inside each process.
* **Priority with aging.** Waiters of one bucket are served in order of their *rank*::

      rank = arrival_time + priority * aging_step

  i.e. a waiter's effective priority improves by one level for every ``aging_step`` seconds
  it waits (ties: arrival order). An URGENT call arriving ``3 * aging_step`` seconds after a
  BACKFILL call queues behind it, so a steady stream of urgent work delays low-priority work
  by at most ``priority * aging_step`` seconds' worth of arrivals, never forever. The rank
  is fixed at arrival, so a plain heap keeps the order without re-sorting.
* **Back-off on 429.** A 429 empties the bucket and doubles a penalty factor (at most
  :data:`MAX_PENALTY`); the effective rate is ``rate / penalty``. 429s that arrive within one
  emission interval of the previous step count once (they are echoes of the same burst).
  Every 2xx afterwards divides the penalty by :data:`RECOVERY_FACTOR` until it is back at 1.
* **Adaptation.** ``observe`` adopts the rate a channel reports in a response header
  (SP-API ``x-amzn-RateLimit-Limit``) when it differs from the one in use.
* **Daily quotas.** A bucket may also carry a :class:`~marketsync.core.types.DailyQuota`
  (eBay: "N calls per day per API"): a counter per calendar window that starts again at a
  fixed local time. Waiting hours for a token inside a job would only time the job out,
  so a spent quota raises :class:`~marketsync.core.errors.Throttled` with the seconds until
  the reset, and the scheduler backs the job off. Non-urgent work stops at
  ``limit * (1 - reserve)``. ``adopt_quota`` takes the live figures a channel reports.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import math
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import trio

from marketsync.core import clock
from marketsync.core.errors import Throttled
from marketsync.core.types import DailyQuota, Priority

log = logging.getLogger("marketsync.governor")

#: The priority of the job running in this task. The scheduler sets it for each job run;
#: trio copies the context into child tasks, so the governed transport reads it without
#: plugins ever passing priorities around.
current_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "marketsync_priority", default=Priority.PRODUCTS
)

#: Seconds of waiting that improve a waiter's priority by one level.
DEFAULT_AGING_STEP = 60.0
#: A 429 at most slows a bucket down to ``rate / MAX_PENALTY``.
MAX_PENALTY = 16.0
#: Each 2xx after a 429 divides the penalty by this: two successes undo one doubling, so a
#: transient 429 on a slow operation (one call per minutes) is forgotten within a few calls.
RECOVERY_FACTOR = math.sqrt(2.0)
#: Rounding slack of float time arithmetic (seconds); far below any real rate limit.
EPSILON = 1e-9

BucketKey = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a bucket applies right now: ``rate`` tokens/s into a bucket of ``burst``."""

    rate: float
    burst: int


class BucketBackend(Protocol):
    """Where bucket levels live. The governor owns ordering, priorities and adaptation.

    The calls mirror the GCRA statements of research/wave2.md §3.4 so that a PostgreSQL
    backend can answer each with one atomic statement: the limits travel with every call
    (like the statement's ``:rate`` and ``:burst``), a bucket is created FULL on first use,
    and a change of limits keeps the current number of tokens. ``now`` is always the
    caller's ``trio.current_time()``; a shared backend translates it to its own clock.
    """

    async def try_take(self, key: BucketKey, cost: int, now: float, limits: Limits) -> float:
        """Take ``cost`` tokens and return 0.0, or take nothing and return the seconds
        until ``cost`` tokens will be available (if nobody else takes them first)."""
        ...

    async def drain(self, key: BucketKey, now: float, limits: Limits) -> None:
        """Empty the bucket: the channel said 429, so whatever we believed it held is wrong."""
        ...

    def level(self, key: BucketKey, now: float, limits: Limits) -> float:
        """Tokens available at ``now`` without I/O (a shared backend answers from what its
        last statement returned). Used for ``has_capacity`` and ``snapshot``."""
        ...


@dataclass(slots=True)
class _Cell:
    tat: float  #: theoretical arrival time: the bucket is full when tat <= now
    limits: Limits


class InProcessBuckets:
    """GCRA buckets in a dict: exact, no I/O, for a single daemon process.

    With emission interval ``T = 1/rate`` and tolerance ``tau = burst * T``, taking ``c``
    tokens is allowed iff ``max(tat, now) + c*T - tau <= now`` — a token bucket of capacity
    ``burst``. Keeping one absolute timestamp (not a float level) means a waiter that sleeps
    until the returned moment finds exactly its tokens there, with no drift.
    """

    __slots__ = ("_cells",)

    def __init__(self) -> None:
        self._cells: dict[BucketKey, _Cell] = {}

    def _cell(self, key: BucketKey, now: float, limits: Limits) -> _Cell:
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = _Cell(tat=now, limits=limits)  # starts full (Envoy)
        elif cell.limits != limits:
            tokens = min(_tokens(cell, now), float(limits.burst))
            cell.tat = now + (limits.burst - tokens) / limits.rate
            cell.limits = limits
        return cell

    async def try_take(self, key: BucketKey, cost: int, now: float, limits: Limits) -> float:
        cell = self._cell(key, now, limits)
        interval = 1.0 / limits.rate
        new_tat = max(cell.tat, now) + cost * interval
        allowed_at = new_tat - limits.burst * interval
        if allowed_at <= now + EPSILON:
            cell.tat = new_tat
            return 0.0
        return allowed_at - now

    async def drain(self, key: BucketKey, now: float, limits: Limits) -> None:
        cell = self._cell(key, now, limits)
        cell.tat = max(cell.tat, now + limits.burst / limits.rate)

    def level(self, key: BucketKey, now: float, limits: Limits) -> float:
        cell = self._cells.get(key)
        if cell is None:
            return float(limits.burst)
        return min(_tokens(cell, now), float(limits.burst))

    def __repr__(self) -> str:
        return f"<InProcessBuckets {len(self._cells)} keys>"


def _tokens(cell: _Cell, now: float) -> float:
    debt = max(0.0, cell.tat - now) * cell.limits.rate
    return max(0.0, cell.limits.burst - debt)


@dataclass(slots=True)
class _Window:
    """A daily quota's counter for the window ``[start, end)``, in wall time."""

    quota: DailyQuota
    zone: ZoneInfo
    limit: int
    used: int = 0
    start: datetime | None = None
    end: datetime | None = None

    def roll(self, now: datetime) -> None:
        """Start a new window when ``now`` is past the current one's end."""
        if self.end is not None and now < self.end:
            return
        local = now.astimezone(self.zone)
        reset = datetime.combine(local.date(), self.quota.resets_at, self.zone)
        if reset > local:
            reset -= timedelta(days=1)
        self.start, self.end = reset, reset + timedelta(days=1)
        self.used, self.limit = 0, self.quota.limit

    def allowance(self, priority: Priority) -> int:
        """Calls ``priority`` may still make in this window."""
        if priority <= Priority.URGENT:
            return self.limit - self.used
        return math.floor(self.limit * (1.0 - self.quota.reserve)) - self.used


@dataclass(frozen=True, slots=True)
class BucketState:
    """One bucket as ``marketsync status`` and ``/metrics`` show it."""

    key: BucketKey
    rate: float  #: effective rate now (base rate slowed down by the penalty)
    burst: int
    tokens: float
    waiting: int
    throttled: int  #: 429s observed
    acquired: int  #: tokens handed out
    base_rate: float  #: published plan, or the rate the channel last reported
    penalty: float  #: 1.0 when not slowed down after a 429


@dataclass(eq=False, slots=True)
class _Waiter:
    rank: float
    seq: int
    cost: int
    wake: trio.Event = field(default_factory=trio.Event)

    def __lt__(self, other: "_Waiter") -> bool:
        return (self.rank, self.seq) < (other.rank, other.seq)


@dataclass(slots=True)
class _Bucket:
    key: BucketKey
    plan: Limits
    reported_rate: float | None = None
    penalty: float = 1.0
    penalized_at: float = -math.inf
    waiters: list[_Waiter] = field(default_factory=list)
    throttled: int = 0
    acquired: int = 0
    margin: float = 0.0  #: share of the published rate left unused (see Governor)
    window: _Window | None = None  #: the daily quota, when the channel publishes one

    @property
    def base_rate(self) -> float:
        return self.reported_rate if self.reported_rate is not None else self.plan.rate

    @property
    def limits(self) -> Limits:
        return Limits(rate=self.base_rate * (1.0 - self.margin) / self.penalty,
                      burst=self.plan.burst)

    def wake_head(self) -> None:
        """Let the first waiter re-check: it became first, or the limits changed."""
        if self.waiters:
            self.waiters[0].wake.set()


class Governor:
    """Token buckets by key, with prioritised, fair, cancellable waiting.

    :param backend: where levels live; :class:`InProcessBuckets` by default.
    :param aging_step: seconds of waiting that raise a waiter's priority by one level.
    """

    def __init__(
        self, backend: BucketBackend | None = None, *, aging_step: float = DEFAULT_AGING_STEP,
        rate_margin: float = 0.0,
    ) -> None:
        """``rate_margin``: the share of each published rate to leave unused. The channel
        counts on its own clock and our calls reach it with varying delay, so a client
        that sends exactly on the token boundary is throttled now and then (the
        benchmarks saw one 429 per backfill at margin 0); the daemon leaves 2 %."""
        if not aging_step > 0:
            raise ValueError(f"Governor aging_step must be positive, got {aging_step!r}")
        if not 0.0 <= rate_margin < 0.5:
            raise ValueError(f"Governor rate_margin must be in [0, 0.5), got {rate_margin!r}")
        self._margin = float(rate_margin)
        self._backend: BucketBackend = backend if backend is not None else InProcessBuckets()
        self._buckets: dict[BucketKey, _Bucket] = {}
        self._aging_step = float(aging_step)
        self._seq = itertools.count()

    # --- configuration -------------------------------------------------------------------

    def define(self, key: BucketKey, rate: float, burst: int) -> None:
        """Declare (or re-declare) the published limits of ``key``.

        Idempotent: the same numbers again change nothing (a rate learnt from response
        headers is kept). New numbers replace the plan and drop the learnt rate.
        """
        _check_key(key)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
            math.isfinite(rate) and rate > 0
        ):
            raise ValueError(
                f"rate-limit bucket {key!r}: rate must be > 0 per second, got {rate!r}"
            )
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"rate-limit bucket {key!r}: burst must be an int >= 1, got {burst!r}")
        plan = Limits(rate=float(rate), burst=burst)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = _Bucket(key=key, plan=plan, margin=self._margin)
        elif bucket.plan != plan:
            bucket.plan = plan
            bucket.reported_rate = None
            bucket.wake_head()

    def define_quota(self, key: BucketKey, quota: DailyQuota) -> None:
        """Give ``key`` (already defined) a daily quota; the same quota again changes nothing."""
        bucket = self._bucket(key)
        if isinstance(quota.limit, bool) or not isinstance(quota.limit, int) or quota.limit < 1:
            raise ValueError(f"daily quota of {key!r}: limit must be an int >= 1, got {quota.limit!r}")
        if not 0.0 <= quota.reserve < 1.0:
            raise ValueError(f"daily quota of {key!r}: reserve must be in [0, 1), got {quota.reserve!r}")
        if bucket.window is not None and bucket.window.quota == quota:
            return
        bucket.window = _Window(quota=quota, zone=ZoneInfo(quota.timezone), limit=quota.limit)

    def adopt_quota(self, key: BucketKey, limit: int, remaining: int, resets_at: datetime) -> None:
        """The channel reported its live figures: they win over our own count until
        ``resets_at``, the end of the channel's current window."""
        bucket = self._bucket(key)
        window = bucket.window
        if window is None or limit < 1 or remaining < 0 or resets_at.tzinfo is None:
            log.debug("ignoring quota figures for %r", key)
            return
        now = clock.now()
        if resets_at <= now:
            return
        window.roll(now)
        window.limit, window.used = limit, max(0, limit - remaining)
        window.end = resets_at
        window.start = resets_at - timedelta(days=1)

    def quota_left(self, key: BucketKey) -> int | None:
        """Calls left today on ``key``'s daily quota (None: no quota)."""
        window = self._bucket(key).window
        if window is None:
            return None
        window.roll(clock.now())
        return window.limit - window.used

    def _check_quota(self, bucket: _Bucket, cost: int, priority: Priority) -> None:
        window = bucket.window
        if window is None:
            return
        now = clock.now()
        window.roll(now)
        if window.allowance(priority) >= cost:
            return
        wait = max(1.0, (window.end - now).total_seconds()) if window.end else 3600.0
        raise Throttled(f"daily quota of {bucket.key!r} spent ({window.used} of {window.limit}"
                        f"{'' if priority <= Priority.URGENT else ', the rest kept for urgent work'}); "
                        f"it starts again in {wait / 3600:.1f} h", retry_after=wait)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def _bucket(self, key: BucketKey) -> _Bucket:
        try:
            return self._buckets[key]
        except (KeyError, TypeError):
            raise KeyError(
                f"no rate-limit bucket defined for {key!r}; call Governor.define first"
            ) from None

    # --- waiting for a token ---------------------------------------------------------------

    async def acquire(
        self, key: BucketKey, priority: Priority | None = None, cost: int = 1
    ) -> None:
        """Wait until ``cost`` tokens of ``key`` are ours.

        ``priority`` defaults to :data:`current_priority`. Cancelling the wait leaves the
        queue as if the call had never come: no token is taken, the next waiter moves up.
        """
        bucket = self._bucket(key)
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise ValueError(f"rate-limit bucket {key!r}: cost must be an int >= 1, got {cost!r}")
        if cost > bucket.plan.burst:
            raise ValueError(
                f"rate-limit bucket {key!r}: cost {cost} exceeds the burst {bucket.plan.burst}"
            )
        if priority is None:
            priority = current_priority.get()
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_quota(bucket, cost, priority)
        now = trio.current_time()
        if not bucket.waiters and await self._take(bucket, cost, now, priority) == 0.0:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        waiter = _Waiter(
            rank=now + int(priority) * self._aging_step, seq=next(self._seq), cost=cost
        )
        former_head = bucket.waiters[0] if bucket.waiters else None
        heapq.heappush(bucket.waiters, waiter)
        if former_head is not None and bucket.waiters[0] is waiter:
            former_head.wake.set()  # it may be sleeping on its timer; let it step back
        served = False
        try:
            while True:
                waiter.wake = trio.Event()
                if waiter.cost > bucket.plan.burst:  # the plan shrank while we waited
                    raise ValueError(
                        f"rate-limit bucket {key!r}: cost {waiter.cost} exceeds the burst "
                        f"{bucket.plan.burst}"
                    )
                if bucket.waiters[0] is waiter:
                    wait = await self._take(bucket, waiter.cost, trio.current_time(), priority)
                    if wait == 0.0:
                        served = True
                        return
                    with trio.move_on_at(trio.current_time() + wait):
                        await waiter.wake.wait()
                else:
                    await waiter.wake.wait()
        finally:
            if bucket.waiters[0] is waiter:  # served, or cancelled while first
                heapq.heappop(bucket.waiters)
                bucket.wake_head()
            else:  # cancelled while queued behind others
                bucket.waiters.remove(waiter)
                heapq.heapify(bucket.waiters)
            if not served:
                log.debug("gave up waiting for %r", key)

    async def _take(self, bucket: _Bucket, cost: int, now: float,
                    priority: Priority = Priority.URGENT) -> float:
        self._check_quota(bucket, cost, priority)  # others may have spent it while we waited
        # Shielded: once a shared backend has taken the token, losing it to a cancel would
        # leak it; the statement is short.
        with trio.CancelScope(shield=True):
            wait = await self._backend.try_take(bucket.key, cost, now, bucket.limits)
        if wait <= 0.0:
            bucket.acquired += cost
            if bucket.window is not None:
                bucket.window.used += cost
            return 0.0
        return wait

    # --- learning from responses -----------------------------------------------------------

    async def observe(
        self,
        key: BucketKey,
        status_code: int,
        headers: Mapping[str, str],
        rate_header: str | None,
    ) -> None:
        """Adapt ``key`` to a response: the reported rate, a 429, or recovery after one."""
        bucket = self._bucket(key)
        now = trio.current_time()
        changed = False
        if rate_header:
            reported = _header(headers, rate_header)
            if reported is not None:
                changed |= self._adopt_rate(bucket, reported)
        if status_code == 429:
            bucket.throttled += 1
            if now - bucket.penalized_at >= 1.0 / bucket.limits.rate:
                bucket.penalty = min(bucket.penalty * 2.0, MAX_PENALTY)
                bucket.penalized_at = now
                log.info("throttled on %r: slowing down to 1/%g of its rate", key, bucket.penalty)
            with trio.CancelScope(shield=True):
                await self._backend.drain(key, now, bucket.limits)
            changed = True
        elif 200 <= status_code < 300 and bucket.penalty > 1.0:
            bucket.penalty /= RECOVERY_FACTOR
            if bucket.penalty < 1.0 + EPSILON:
                bucket.penalty = 1.0
            if bucket.penalty == 1.0:
                log.info("rate-limit bucket %r recovered from throttling", key)
            changed = True
        if changed:
            bucket.wake_head()

    def _adopt_rate(self, bucket: _Bucket, text: str) -> bool:
        try:
            rate = float(text.strip())
        except ValueError:
            log.debug("ignoring an unreadable rate header on %r", bucket.key)
            return False
        if not (math.isfinite(rate) and rate > 0):
            log.debug("ignoring a non-positive rate header on %r", bucket.key)
            return False
        if math.isclose(rate, bucket.base_rate, rel_tol=1e-9):
            return False
        log.info(
            "rate-limit bucket %r: channel reports %g/s (was %g/s)",
            bucket.key, rate, bucket.base_rate,
        )
        bucket.reported_rate = rate
        return True

    # --- looking at it ---------------------------------------------------------------------

    def has_capacity(self, key: BucketKey, cost: int = 1) -> bool:
        """Whether a call of ``cost`` would go through now without queueing.

        Lets the scheduler skip starting a low-priority job that would only wait.
        """
        bucket = self._bucket(key)
        if bucket.waiters:
            return False
        level = self._backend.level(key, trio.current_time(), bucket.limits)
        return level + EPSILON >= cost

    def snapshot(self) -> list[BucketState]:
        """Every bucket's state now, in definition order."""
        now = trio.current_time()
        return [self._state(bucket, now) for bucket in self._buckets.values()]

    def state(self, key: BucketKey) -> BucketState:
        """One bucket's state now."""
        return self._state(self._bucket(key), trio.current_time())

    def _state(self, bucket: _Bucket, now: float) -> BucketState:
        limits = bucket.limits
        return BucketState(
            key=bucket.key,
            rate=limits.rate,
            burst=limits.burst,
            tokens=self._backend.level(bucket.key, now, limits),
            waiting=len(bucket.waiters),
            throttled=bucket.throttled,
            acquired=bucket.acquired,
            base_rate=bucket.base_rate,
            penalty=bucket.penalty,
        )

    def __iter__(self) -> Iterator[BucketKey]:
        return iter(self._buckets)

    def __len__(self) -> int:
        return len(self._buckets)

    def __repr__(self) -> str:
        waiting = sum(len(b.waiters) for b in self._buckets.values())
        slowed = [b.key for b in self._buckets.values() if b.penalty > 1.0]
        text = f"<Governor {len(self._buckets)} buckets, {waiting} waiting"
        if slowed:
            text += f", slowed down: {', '.join(map(repr, slowed))}"
        return text + f", backend={self._backend!r}>"


def _check_key(key: object) -> None:
    if not isinstance(key, tuple) or not key:
        raise TypeError(f"a rate-limit bucket key must be a non-empty tuple, got {key!r}")
    try:
        hash(key)
    except TypeError:
        raise TypeError(f"a rate-limit bucket key must be hashable, got {key!r}") from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for ``httpx.Headers`` and plain dicts."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for header, value in headers.items():
        if header.lower() == lowered:
            return value
    return None
