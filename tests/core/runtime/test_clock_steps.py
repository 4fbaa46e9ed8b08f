"""A wall clock that steps backwards: cursor watermarks are clamped to now and logged,
so an import neither stalls until the clock catches up (skipping what changed meanwhile)
nor stores a watermark in the future."""

from __future__ import annotations

import logging
from datetime import timedelta

import trio

from marketsync.core import clock, hookimpl
from marketsync.core.store import cursors
from marketsync.core.types import Cursor, Page

from .test_daemon import START, Scripted, make_daemon


class Windows(Scripted):
    """Hands back a watermark like the Amazon plugin: ``now - lag``, or what the test says."""

    def __init__(self, name: str):
        super().__init__(name)
        self.seen: list[Cursor] = []
        self.ahead = timedelta(0)

    @hookimpl
    async def import_orders(self, integration, cursor):
        self.seen.append(cursor)
        self.imports += 1
        return Page(items=(), done=True,
                    next=Cursor(since=clock.now() - timedelta(minutes=2) + self.ahead))


async def test_a_step_back_clamps_the_watermark_and_logs_it(tmp_path, autojump_clock, caplog):
    caplog.set_level(logging.WARNING, logger="marketsync")
    clock.set_start(START)
    channel = Windows("shop")
    daemon = make_daemon(tmp_path, channel)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1300)
        before_step = channel.seen[-1].since
        assert before_step is not None and before_step <= clock.now()
        # NTP steps the wall clock back by an hour (the clock had run ahead)
        clock.set_start(clock.now() - timedelta(hours=1))
        runs = len(channel.seen)
        await trio.sleep(700)
        after = channel.seen[runs]
        assert after.since is not None and after.since <= clock.now()  # never in the future
        assert clock.now() - after.since < timedelta(minutes=15)  # nor stalled an hour
        # a plugin handing back a watermark ahead of the clock: stored as now
        channel.ahead = timedelta(hours=3)
        await trio.sleep(700)
        stored = await daemon.store.read(cursors.load, daemon.integration_ids["shop-x"],
                                         "import_orders")
        nursery.cancel_scope.cancel()
    assert stored.since <= clock.now()
    lines = [r.getMessage() for r in caplog.records if "ahead of the clock" in r.getMessage()]
    assert any(l.startswith("shop-x import_orders: stored cursor is 0:") for l in lines), lines
    assert any("the channel's next cursor is 2:5" in l for l in lines), lines
