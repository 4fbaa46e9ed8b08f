"""`status` and the page know whether a daemon is running: the heartbeat in the database."""

from __future__ import annotations

import trio

from marketsync.core.runtime.status import collect, liveness, render
from marketsync.core.store import heartbeats
from marketsync.core.web.page import render_status

from ...e2e.conftest import e2e_clock, make_daemon, plugins, scenario_changes, world  # noqa: F401

EU_ONLY = [("amazon-uk", "eu", "UK"), ("amazon-de", "eu", "DE")]


async def test_running_then_stopped_daemon_is_told_apart(make_daemon, e2e_clock):
    """While the daemon runs, status says so and shows next runs; after it stopped, the
    CLI and the page say "daemon not running: stopped at …" instead of LIVE/"next 48s ago"."""
    daemon = make_daemon(integrations=EU_ONLY)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(120)
        while_running = await daemon.store.read(collect)
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    await trio.sleep(600)  # ten minutes after the stop, someone looks
    after = await daemon.store.read(collect)
    running, line = liveness(while_running)
    assert running and line.startswith("daemon running")
    assert "next in" in render(while_running) or "due now" in render(while_running)
    stopped, line = liveness(after)
    assert not stopped and line.startswith("daemon not running: stopped at")
    text = render(after)
    assert text.splitlines()[0].startswith("DAEMON NOT RUNNING: STOPPED AT")
    assert "next in" not in text and "next -" in text
    page = render_status(daemon, after, ask_token=False)
    assert "id='daemon-banner'" in page and "stopped at" in page
    assert "next in" not in page
    assert "id='daemon-banner'" not in render_status(daemon, while_running, ask_token=False)


async def test_a_daemon_that_stopped_beating_is_stale(make_daemon, e2e_clock):
    """Killed or hung (no clean stop): after three missed beats status says "stale since"."""
    daemon = make_daemon(integrations=EU_ONLY)
    await daemon.prepare()
    await daemon.store.run(heartbeats.beat, "host:4242", e2e_clock_now())
    fresh = await daemon.store.read(collect)
    await trio.sleep(heartbeats.STALE_AFTER + 30)
    stale = await daemon.store.read(collect)
    assert liveness(fresh)[0] is True
    running, line = liveness(stale)
    assert not running and "stale since" in line and "no heartbeat for 2m00s" in line
    assert "stale since" in render(stale).splitlines()[0].lower()


async def test_no_heartbeat_means_never_ran(make_daemon, e2e_clock):
    daemon = make_daemon(integrations=EU_ONLY)
    await daemon.prepare()
    running, line = liveness(await daemon.store.read(collect))
    assert not running and "never run" in line


def e2e_clock_now():
    from marketsync.core import clock

    return clock.now()
