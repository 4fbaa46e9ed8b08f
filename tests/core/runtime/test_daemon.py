"""The daemon's integration lifecycle and isolation, with scripted channel plugins."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import trio

from marketsync.core import clock, hookimpl
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.config.schema import parse_config
from marketsync.core.errors import IntegrationAuthFailed, IntegrationNotReady
from marketsync.core.runtime.runner import SETUP_BACKOFF
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import Store
from marketsync.core.store import integrations as store_integrations
from marketsync.core.types import (
    AccountInfo,
    ChannelInfo,
    JobDefault,
    Marketplace,
    Page,
    Priority,
)

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


class Scripted:
    """A channel whose credentials check and order import do what the test says."""

    def __init__(self, name: str):
        self.name = name
        self.check: list = []  # exceptions to raise, in order, then success
        self.import_behaviour = "ok"  # ok | raise | hang
        self.imports = 0

    @hookimpl
    def channel_info(self):
        return ChannelInfo(
            name=self.name, title=self.name,
            marketplaces={"X": Marketplace(code="X", id="x", name="X")},
            jobs=(JobDefault(kind="import_orders", every=600, priority=Priority.ORDERS,
                             timeout=120),))

    @hookimpl
    async def check_credentials(self, integration):
        if self.check:
            raise self.check.pop(0)
        return AccountInfo(seller_id=f"{self.name}-seller", marketplaces=("X",))

    @hookimpl
    async def import_orders(self, integration, cursor):
        self.imports += 1
        if self.import_behaviour == "raise":
            raise RuntimeError("plugin bug: KeyError 'OrderId'")
        if self.import_behaviour == "hang":
            await trio.sleep_forever()
        return Page(items=(), done=True)


def make_daemon(tmp_path, *channels: Scripted) -> Daemon:
    plugins = plugin_loading.build(builtin=(), extra=channels, load_entry_points=False)
    text = "accounts:\n" + "".join(
        f"  {c.name}-acct:\n    channel: {c.name}\n" for c in channels) + "integrations:\n" + "".join(
        f"  - alias: {c.name}-x\n    account: {c.name}-acct\n    marketplace: X\n" for c in channels)
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "c.yaml"), environ={})
    return Daemon(config, plugins=plugins, store=Store(f"sqlite:///{tmp_path / 'db.sqlite'}"))


@pytest.fixture
def mock_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_not_ready_retries_with_backoff_then_goes_live(tmp_path, mock_clock):
    """Channel unreachable twice: RETRY, checked again after 30 s and 60 s (±10 %), then LIVE."""
    clock.set_start(START)
    channel = Scripted("slow")
    channel.check = [IntegrationNotReady("down"), IntegrationNotReady("still down")]
    daemon = make_daemon(tmp_path, channel)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        runner = daemon.runners["slow-x"]
        assert runner.state is IntegrationState.RETRY and runner.reason == "down"
        started = trio.current_time()
        while runner.state is not IntegrationState.LIVE:
            await trio.sleep(1)
        waited = trio.current_time() - started
        low = SETUP_BACKOFF.raw_delay(1) * 0.9 + SETUP_BACKOFF.raw_delay(2) * 0.9
        high = SETUP_BACKOFF.raw_delay(1) * 1.1 + SETUP_BACKOFF.raw_delay(2) * 1.1 + 2
        assert low <= waited <= high
        stored = await daemon.store.read(store_integrations.get_state, "slow-x")
        nursery.cancel_scope.cancel()
    assert stored.state == "LIVE"


async def test_auth_failure_is_incomplete_until_retry(tmp_path, mock_clock):
    """Refused credentials: INCOMPLETE, no jobs run, nothing retried by itself; Retry → LIVE."""
    clock.set_start(START)
    channel = Scripted("shop")
    channel.check = [IntegrationAuthFailed("refresh token revoked")]
    daemon = make_daemon(tmp_path, channel)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        runner = daemon.runners["shop-x"]
        assert runner.state is IntegrationState.INCOMPLETE
        await trio.sleep(3600)
        assert runner.state is IntegrationState.INCOMPLETE and channel.imports == 0
        runner.retry()
        await trio.sleep(120)
        assert runner.state is IntegrationState.LIVE and channel.imports >= 1
        nursery.cancel_scope.cancel()


async def test_a_raising_plugin_backs_off_and_the_others_keep_running(tmp_path, mock_clock):
    """One channel's import raises every time: its job backs off and reports the error;
    the other channel's imports run on schedule."""
    clock.set_start(START)
    broken, healthy = Scripted("broken"), Scripted("healthy")
    broken.import_behaviour = "raise"
    daemon = make_daemon(tmp_path, broken, healthy)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(3 * 3600)
        jobs = {(j.integration, j.kind): j for j in daemon.scheduler.snapshot()}
        health = await daemon.store.read(lambda s: __import__(
            "marketsync.core.store.job_runs", fromlist=["x"]).health(s))
        nursery.cancel_scope.cancel()
    failing = jobs[("broken-x", "import_orders")]
    assert failing.failures >= 3 and "KeyError 'OrderId'" in failing.last_error
    # 30, 60, 120, 240 ... s of backoff: far fewer attempts than a tight loop would make
    assert broken.imports < 20
    assert healthy.imports >= 18  # every 10 min for 3 h
    assert daemon.runners["broken-x"].state is IntegrationState.LIVE  # a bug is not a state
    stored = {h.alias: h for h in health if h.kind == "import_orders"}
    assert stored["broken-x"].consecutive_failures >= 3 and stored["healthy-x"].consecutive_failures == 0


async def test_a_hanging_plugin_times_out_and_the_others_keep_running(tmp_path, mock_clock):
    """An import that never returns is cancelled at its timeout and counted as a failure."""
    clock.set_start(START)
    stuck, healthy = Scripted("stuck"), Scripted("healthy")
    stuck.import_behaviour = "hang"
    daemon = make_daemon(tmp_path, stuck, healthy)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(2 * 3600)
        jobs = {(j.integration, j.kind): j for j in daemon.scheduler.snapshot()}
        nursery.cancel_scope.cancel()
    hung = jobs[("stuck-x", "import_orders")]
    assert hung.total_failures >= 2 and "timed out" in hung.last_error
    assert healthy.imports >= 11


async def test_a_channel_without_plugin_is_error_with_the_reason(tmp_path, mock_clock):
    """An integration whose plugin failed to load is ERROR with the import error; others run."""
    clock.set_start(START)
    healthy = Scripted("healthy")
    plugins = plugin_loading.build(builtin=("marketsync.plugins.ghostly",), extra=[healthy],
                                   load_entry_points=False)
    text = ("accounts:\n  g:\n    channel: ghostly\n  h:\n    channel: healthy\nintegrations:\n"
            "  - alias: ghost-x\n    account: g\n    marketplace: X\n"
            "  - alias: healthy-x\n    account: h\n    marketplace: X\n")
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "c.yaml"), environ={},
                          unavailable=plugins.unavailable())
    daemon = Daemon(config, plugins=plugins, store=Store(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        states = {a: (r.state, r.reason) for a, r in daemon.runners.items()}
        nursery.cancel_scope.cancel()
    assert states["healthy-x"][0] is IntegrationState.LIVE
    assert states["ghost-x"][0] is IntegrationState.ERROR
    assert "import failed" in states["ghost-x"][1]


async def test_buyer_data_is_purged_30_days_after_delivery(tmp_path, mock_clock):
    """The daemon's hourly housekeeping empties the buyer columns of orders delivered more
    than 30 days ago and keeps the rest of the order."""
    from datetime import timedelta

    from sqlalchemy import select

    from marketsync.core.domain import orders
    from marketsync.core.domain.pii import PiiCipher
    from marketsync.core.store.models import Order
    from marketsync.core.types import (
        Address, Buyer, ChannelOrder, ChannelOrderItem, Fulfillment, OrderStatus)

    clock.set_start(START)
    channel = Scripted("shop")
    daemon = make_daemon(tmp_path, channel)
    cipher = PiiCipher([b"k" * 32])

    def order(number: str, delivered_days_ago: int) -> ChannelOrder:
        when = START - timedelta(days=delivered_days_ago + 2)
        return ChannelOrder(
            channel_order_id=number, marketplace="X", status=OrderStatus.SHIPPED,
            channel_status="Shipped", fulfillment=Fulfillment.FBA, purchased_at=when,
            updated_at=when, shipped_at=when,
            delivered_at=START - timedelta(days=delivered_days_ago),
            buyer=Buyer(name="Ada Lovelace", email="ada@example.com"),
            shipping_address=Address(name="Ada Lovelace", line1="1 Street", country_code="GB"),
            items=(ChannelOrderItem(channel_item_id="1", channel_sku="S", quantity=1),))

    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        integration_id = daemon.integration_ids["shop-x"]
        await daemon.store.run(orders.apply_channel_orders, integration_id,
                               [order("OLD", 31), order("NEW", 5)], cipher=cipher)
        await trio.sleep(3700)  # the next hourly pass

        def buyer_columns(session):
            return {o.channel_order_id: (o.buyer_name, o.ship_to_address, o.status)
                    for o in session.execute(select(Order)).scalars()}

        stored = await daemon.store.read(buyer_columns)
        nursery.cancel_scope.cancel()
    assert stored["OLD"][:2] == (None, None) and stored["OLD"][2] is OrderStatus.SHIPPED
    assert stored["NEW"][0] is not None and stored["NEW"][1] is not None
