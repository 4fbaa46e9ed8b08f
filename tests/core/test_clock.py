"""core/clock.py: the one source of now, in step with trio's (mock) clock."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import trio

from marketsync.core import clock

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


async def test_wall_time_follows_the_mock_clock(autojump_clock):
    """A simulated day passes in the wall time the daemon sees, not just in trio's clock."""
    clock.set_start(START)
    await trio.sleep(86_400)
    assert clock.now() == START + timedelta(days=1)
    assert clock.isoformat() == "2026-11-03T12:00:00Z"


def test_outside_trio_it_is_real_utc_time():
    """CLI commands outside a trio run get the real time, aware and in UTC."""
    before = datetime.now(timezone.utc)
    now = clock.now()
    assert now.tzinfo is not None and before <= now <= datetime.now(timezone.utc)


async def test_set_start_needs_an_aware_datetime():
    """A naive datetime would silently mean local time: refused."""
    with pytest.raises(ValueError, match="aware"):
        clock.set_start(datetime(2026, 1, 1))


async def test_time_stands_still_while_a_thread_works(autojump_clock):
    """With autojump, a loop waiting for a thread looks idle; run_in_thread keeps the
    clock from leaping over a sleeping task's deadline meanwhile."""
    woke = []

    async def sleeper():
        await trio.sleep(5)
        woke.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.sleep(0)
        started = trio.current_time()
        await clock.run_in_thread(time.sleep, 0.2)  # 200 ms of real blocking work
        during = trio.current_time() - started
    assert during == 0  # without the guard the clock jumps 5 s while the thread runs
    assert woke == [5.0]
    assert autojump_clock.autojump_threshold == 0  # restored afterwards


def test_in_production_the_wall_clock_is_read_every_time(monkeypatch):
    """On trio's real clock, an NTP step (either way) shows at once: nothing is derived
    from a reading taken at start."""
    readings = iter([START, START + timedelta(hours=1), START - timedelta(minutes=10)])
    monkeypatch.setattr(clock, "_wall_now", lambda: next(readings))

    async def main():
        return [clock.now(), clock.now(), clock.now()]

    assert trio.run(main) == [START, START + timedelta(hours=1), START - timedelta(minutes=10)]


async def test_under_the_mock_clock_the_anchor_still_rules(autojump_clock, monkeypatch):
    """Tests keep their reproducible simulated time, whatever the wall clock does."""
    clock.set_start(START)
    monkeypatch.setattr(clock, "_wall_now", lambda: START + timedelta(days=999))
    await trio.sleep(60)
    assert clock.now() == START + timedelta(minutes=1)
