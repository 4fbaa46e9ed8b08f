"""Account-scoped jobs: one run per account for all its integrations, records routed by
marketplace, one cursor per account — with a scripted channel, so only the core is tested."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import trio
from sqlalchemy import select

from marketsync.core import clock, hookimpl
from marketsync.core.config.schema import parse_config
from marketsync.core.errors import IntegrationAuthFailed, IntegrationError
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import Store, cursors, quarantine
from marketsync.core.store.models import IntegrationRow, JobRun, Order
from marketsync.core.types import (
    AccountInfo,
    ChannelInfo,
    ChannelOrder,
    ChannelOrderItem,
    Cursor,
    Fulfillment,
    JobDefault,
    Marketplace,
    OrderStatus,
    Page,
    Priority,
    RejectedRecord,
)

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
CODES = ("X", "Y", "Z")


def order(order_id: str, marketplace: str) -> ChannelOrder:
    now = clock.now()
    return ChannelOrder(channel_order_id=order_id, marketplace=marketplace,
                        status=OrderStatus.NEW, channel_status="open",
                        fulfillment=Fulfillment.FBA, purchased_at=now, updated_at=now,
                        items=(ChannelOrderItem(channel_item_id="1", channel_sku="SKU-1",
                                                quantity=1),))


class Seller:
    """A channel whose order API answers per seller account, like Amazon's."""

    def __init__(self, scope: str = "account"):
        self.scope = scope
        self.calls: list[tuple[str, tuple[str, ...], Cursor]] = []
        self.refuse: set[str] = set()  # marketplaces the account does not sell in
        self.stray = False  # also return an order of a marketplace nobody imports
        self.fail: Exception | None = None  # what the import raises, for every account
        self.late: bool | str = False  # reject "late-Y" on a's first run, return it later

    @hookimpl
    def channel_info(self):
        return ChannelInfo(
            name="seller", title="Seller",
            marketplaces={c: Marketplace(code=c, id=c.lower(), name=c) for c in CODES},
            jobs=(JobDefault(kind="import_orders", every=600, priority=Priority.ORDERS,
                             timeout=120, scope=self.scope),))

    @hookimpl
    async def check_credentials(self, integration):
        if integration.marketplace in self.refuse:
            raise IntegrationError(f"this account does not sell in {integration.marketplace}")
        return AccountInfo(seller_id=f"{integration.account}-id", marketplaces=CODES)

    @hookimpl
    async def import_orders(self, integration, integrations, cursor):
        n = len(self.calls)
        self.calls.append((integration.alias, tuple(i.alias for i in integrations), cursor))
        if self.fail is not None and integration.account == "a":
            raise self.fail
        items = [order(f"{integration.account}-{i.marketplace}-{n}", i.marketplace)
                 for i in integrations]
        if self.stray:
            items.append(order(f"{integration.account}-Z-{n}", "Z"))
        rejected = [RejectedRecord(record_id=f"bad-{n}", reason="no items")]
        if self.late and integration.account == "a":
            if self.late is True:  # a's first run
                rejected.append(RejectedRecord(record_id="late-Y", reason="unknown status"))
                self.late = "sent"
            else:
                items.append(order("late-Y", "Y"))
        marks = {i.marketplace: clock.now().isoformat() for i in integrations}
        return Page(items=items, done=True, rejected=rejected,
                    next=Cursor(since=clock.now(), state={
                        "watermarks": {**cursor.state.get("watermarks", {}), **marks},
                        "runs": n + 1}))


def make_daemon(tmp_path, channel: Seller, integrations: str) -> Daemon:
    plugins = plugin_loading.build(builtin=(), extra=(channel,), load_entry_points=False)
    text = ("accounts:\n  a:\n    channel: seller\n  b:\n    channel: seller\n"
            "integrations:\n" + integrations)
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "c.yaml"), environ={})
    return Daemon(config, plugins=plugins, store=Store(f"sqlite:///{tmp_path / 'db.sqlite'}"))


THREE = ("  - {alias: a-x, account: a, marketplace: X}\n"
         "  - {alias: a-y, account: a, marketplace: Y}\n"
         "  - {alias: b-x, account: b, marketplace: X}\n")


@pytest.fixture
def mock_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def _stored(session):
    rows = session.execute(select(IntegrationRow.alias, Order.marketplace, Order.channel_order_id)
                           .join(IntegrationRow, IntegrationRow.id == Order.integration_id)).all()
    health = session.execute(select(IntegrationRow.alias, JobRun.kind)
                             .join(IntegrationRow, IntegrationRow.id == JobRun.integration_id)).all()
    return rows, set(health)


async def test_one_run_per_account_routes_each_order_to_its_integration(tmp_path, mock_clock):
    clock.set_start(START)
    channel = Seller()
    channel.stray = True
    daemon = make_daemon(tmp_path, channel, THREE)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        jobs = {(j.integration, j.kind) for j in daemon.scheduler.snapshot()}
        assert ("a-x", "import_orders") in jobs and ("b-x", "import_orders") in jobs
        assert ("a-y", "import_orders") not in jobs  # a-x's job serves it
        await trio.sleep(3600)
        rows, health = await daemon.store.read(_stored)
        cursor = await daemon.store.read(cursors.load_account, "a", "import_orders")
        a_id = daemon.integration_ids["a-x"]
        held = await daemon.store.read(quarantine.list_records, a_id, "import_orders")
        nursery.cancel_scope.cancel()
    by_account = {}
    for lead, members, _ in channel.calls:
        by_account.setdefault(lead, set()).add(members)
    assert by_account == {"a-x": {("a-x", "a-y")}, "b-x": {("b-x",)}}
    runs_a = sum(1 for lead, _, _ in channel.calls if lead == "a-x")
    assert 6 <= runs_a <= 8  # every 600 s ± 10 % for an hour: once per account, not per member
    assert rows and all(alias.endswith(marketplace.lower()) for alias, marketplace, _ in rows)
    assert {alias for alias, _, _ in rows} == {"a-x", "a-y", "b-x"}
    assert not any(marketplace == "Z" for _, marketplace, _ in rows)
    # the order of Z (nobody imports it) and the plugin's own rejects are held, not lost
    reasons = {r.record_id: r.reason for r in held}
    assert any(rid.startswith("a-Z-") and "'Z'" in reason and "account 'a'" in reason
               for rid, reason in reasons.items())
    assert any(rid.startswith("bad-") for rid in reasons)
    # the account's own cursor: each run of "a" gets what the previous run of "a" returned
    a_calls = [n for n, (lead, _, _) in enumerate(channel.calls) if lead == "a-x"]
    assert [channel.calls[n][2].state.get("runs") for n in a_calls] == [
        None, *(n + 1 for n in a_calls[:-1])]
    assert cursor.state["runs"] == a_calls[-1] + 1
    assert set(cursor.state["watermarks"]) == {"X", "Y"}
    assert {("a-x", "import_orders"), ("a-y", "import_orders")} <= health


async def test_a_trigger_from_any_member_wakes_the_account_job(tmp_path, mock_clock):
    clock.set_start(START)
    channel = Seller()
    daemon = make_daemon(tmp_path, channel, THREE)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(300)
        before = len(channel.calls)
        daemon.trigger("a-y", "import_orders")  # e.g. an ORDER_CHANGE for marketplace Y
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [c[0] for c in channel.calls[before:]] == ["a-x"]


async def test_a_member_in_error_leaves_the_others_running(tmp_path, mock_clock):
    """a-x's marketplace is refused (ERROR): the account's job still runs, for a-y alone,
    and a-x's watermark is untouched."""
    clock.set_start(START)
    channel = Seller()
    channel.refuse = {"X"}
    daemon = make_daemon(tmp_path, channel, THREE)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        assert daemon.runners["a-x"].state is IntegrationState.ERROR
        assert daemon.runners["b-x"].state is IntegrationState.ERROR
        await trio.sleep(1800)
        cursor = await daemon.store.read(cursors.load_account, "a", "import_orders")
        nursery.cancel_scope.cancel()
    assert channel.calls and {c[1] for c in channel.calls} == {("a-y",)}
    assert {c[0] for c in channel.calls} == {"a-y"}
    assert set(cursor.state["watermarks"]) == {"Y"}


async def test_the_accounts_refused_credentials_stop_all_its_integrations(tmp_path, mock_clock):
    """The account's import is refused (token revoked): every integration of the account
    goes INCOMPLETE, the other account runs on, and the job holds until a Retry."""
    clock.set_start(START)
    channel = Seller()
    channel.fail = IntegrationAuthFailed("refresh token revoked")
    daemon = make_daemon(tmp_path, channel, THREE)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)
        states = {alias: runner.state for alias, runner in daemon.runners.items()}
        runs_a = sum(1 for lead, _, _ in channel.calls if lead == "a-x")
        nursery.cancel_scope.cancel()
    assert states == {"a-x": IntegrationState.INCOMPLETE, "a-y": IntegrationState.INCOMPLETE,
                      "b-x": IntegrationState.LIVE}
    assert runs_a == 1  # paused with both members, not retried every period
    assert sum(1 for lead, _, _ in channel.calls if lead == "b-x") >= 3


async def test_a_record_rejected_once_leaves_the_quarantine_when_imported(tmp_path, mock_clock):
    """Rejected on the first run (quarantined under a-x, the first integration), imported
    under a-y on the next: it is no longer held anywhere."""
    clock.set_start(START)
    channel = Seller()
    channel.late = True
    daemon = make_daemon(tmp_path, channel, THREE)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        while not any(lead == "a-x" for lead, _, _ in channel.calls):  # first runs spread
            await trio.sleep(1)
        await trio.sleep(1)
        held_first = await daemon.store.read(quarantine.list_records, None, "import_orders")
        await trio.sleep(900)
        held_then = await daemon.store.read(quarantine.list_records, None, "import_orders")
        rows, _ = await daemon.store.read(_stored)
        nursery.cancel_scope.cancel()
    assert "late-Y" in {r.record_id for r in held_first}
    assert "late-Y" not in {r.record_id for r in held_then}
    assert ("a-y", "Y", "late-Y") in rows


async def test_a_sync_of_one_integration_uses_the_account_cursor(tmp_path, mock_clock):
    """``marketsync sync a-y import_orders`` runs the account's import for a-y alone."""
    from marketsync.core.cli import oneshot

    clock.set_start(START)
    channel = Seller()
    daemon = make_daemon(tmp_path, channel, THREE)
    message = await oneshot.sync(daemon, "a-y", "import_orders")
    cursor = await daemon.store.read(cursors.load_account, "a", "import_orders")
    assert message.startswith("a-y: import_orders done: 1 record(s)")
    assert [(c[0], c[1]) for c in channel.calls] == [("a-y", ("a-y",))]
    assert set(cursor.state["watermarks"]) == {"Y"}


def test_only_hooks_that_route_by_marketplace_may_be_account_scoped():
    class Wrong(Seller):
        @hookimpl
        def channel_info(self):
            return ChannelInfo(name="wrong", title="Wrong", jobs=(
                JobDefault(kind="import_products", every=600, scope="account"),))

    plugins = plugin_loading.build(builtin=(), extra=(Wrong(),), load_entry_points=False)
    assert "wrong" not in plugins.channels
    assert any("cannot be account-scoped" in f.reason for f in plugins.failures)


async def test_per_integration_cursors_become_the_accounts_watermarks(tmp_path):
    """Upgrading: the first account cursor is made from the integrations' own, so nothing
    is imported twice and no window is skipped; afterwards the stored one wins."""
    clock.set_start(START)
    daemon = make_daemon(tmp_path, Seller(), THREE + "  - {alias: a-z, account: a, marketplace: Z}\n")
    await daemon.prepare()
    ids = daemon.integration_ids
    x_mark, y_mark = START - timedelta(hours=2), START - timedelta(minutes=30)

    def legacy(session):
        cursors.save(session, ids["a-x"], "import_orders", Cursor(since=x_mark))
        # a-y was paging when the old version stopped: the watermark is what counts
        cursors.save(session, ids["a-y"], "import_orders", Cursor(
            since=y_mark, token="tok", state={"after": "x", "before": "y"}))
        cursors.save(session, ids["a-z"], "import_orders", Cursor(token="first-run"))
        cursors.save(session, ids["b-x"], "import_orders", Cursor(since=START))
        cursors.save(session, ids["a-x"], "import_products", Cursor(since=START))

    await daemon.store.run(legacy)
    cursor = await daemon.store.read(cursors.load_account, "a", "import_orders")
    assert cursor.token is None and cursor.since == x_mark
    assert cursor.state == {"watermarks": {"X": x_mark.isoformat(), "Y": y_mark.isoformat()}}
    assert await daemon.store.read(cursors.load_account, "a", "import_stock") == Cursor()
    stored = Cursor(since=START, state={"watermarks": {"X": START.isoformat()}})
    await daemon.store.run(cursors.save_account, "a", "import_orders", stored)
    assert await daemon.store.read(cursors.load_account, "a", "import_orders") == stored
    b = await daemon.store.read(cursors.load_account, "b", "import_orders")
    assert b.state["watermarks"] == {"X": START.isoformat()}
