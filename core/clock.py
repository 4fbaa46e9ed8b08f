"""The one source of "now" for the daemon, its jobs and the simulator.

Everything that needs the time asks this module, never ``datetime.now()`` or
``time.time()`` directly.

In production (a trio run on trio's real clock, or no trio run at all) ``now()`` reads the
wall clock every time. It used to be read once and advanced by the monotonic clock, so an
NTP step after boot or a VM suspend left the daemon's "now" minutes off for good (empty
cursor windows, or a ``lastUpdatedBefore`` in the future that Amazon refuses). A wall
clock that steps backwards is the import's business: ``core/runtime/jobs.py`` clamps
cursor watermarks to "now" and logs it.

Under trio's ``MockClock`` (pytest-trio's ``autojump_clock``, the demo, bench/), or once
``set_start`` pinned the run's start, wall time is derived from ``trio.current_time()``
plus that anchor, so a simulated day of schedule — cursors, "created after" filters, token
expiry, backoff — passes in a fraction of a second of real time, and stays consistent with
the monotonic time that trio sleeps on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import trio
import trio.testing

UTC = timezone.utc


@dataclass(frozen=True, slots=True)
class _Anchor:
    wall: datetime
    monotonic: float


_anchor: trio.lowlevel.RunVar[_Anchor] = trio.lowlevel.RunVar("marketsync_clock_anchor")


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def monotonic() -> float:
    """Seconds on trio's clock (mocked in tests); real monotonic time outside trio."""
    if _in_trio():
        return trio.current_time()
    return time.monotonic()


def set_start(wall: datetime) -> None:
    """Pin what "now" is at this moment of the current trio run.

    Tests and simulations call this first so that simulated dates are reproducible
    (the same seed and start give the same world). Must be called inside a trio run.
    """
    if wall.tzinfo is None:
        raise ValueError("clock.set_start needs an aware datetime (UTC)")
    _anchor.set(_Anchor(wall=wall.astimezone(UTC), monotonic=trio.current_time()))


def _wall_now() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """The current time as an aware UTC datetime."""
    if not _in_trio():
        return _wall_now()
    try:
        anchor = _anchor.get()
    except LookupError:
        if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
            return _wall_now()  # production: the wall clock, with NTP's corrections
        anchor = _Anchor(wall=_wall_now(), monotonic=trio.current_time())
        _anchor.set(anchor)
    return anchor.wall + timedelta(seconds=trio.current_time() - anchor.monotonic)


def timestamp() -> float:
    """``now()`` as POSIX seconds."""
    return now().timestamp()


def isoformat(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, as SP-API writes dates."""
    moment = now() if moment is None else moment
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- blocking work in threads --------------------------------------------------------------------

_held = 0


async def run_in_thread(fn, *args, **kwargs):
    """``trio.to_thread.run_sync`` that keeps simulated time still while the thread works.

    Under trio's ``MockClock`` with autojump, a run loop waiting for a thread looks idle,
    and the clock would leap over timeouts and schedules while a database call is still
    running. While any such thread runs, autojump is suspended; real clocks are not
    affected. Use it for every blocking call (the store does).
    """
    global _held
    mock = trio.lowlevel.current_clock()
    if not isinstance(mock, trio.testing.MockClock):
        return await trio.to_thread.run_sync(fn, *args, **kwargs)
    if _held == 0:
        _threshold_before[id(mock)] = mock.autojump_threshold
        mock.autojump_threshold = float("inf")
    _held += 1
    try:
        return await trio.to_thread.run_sync(fn, *args, **kwargs)
    finally:
        _held -= 1
        if _held == 0:
            mock.autojump_threshold = _threshold_before.pop(id(mock), mock.autojump_threshold)


_threshold_before: dict[int, float] = {}
