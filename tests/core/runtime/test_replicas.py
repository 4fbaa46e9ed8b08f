"""The lease keeper: replicas share the jobs, take over a dead one's, and a stale one is fenced.

Several keepers on one database in one trio run stand for several replicas; a replica
"dies" by no longer looking (no renewal, no release) and "pauses" by not looking while
the MockClock runs on. The multi-process version is tests/e2e/test_failover.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import trio

from marketsync.core import clock
from marketsync.core.runtime.replicas import LeaseKeeper, lease_name
from marketsync.core.store import Store, cursors, leases
from marketsync.core.types import Cursor

KEYS = [(f"amazon-{m}", kind) for m in ("us", "de", "uk", "fr")
        for kind in ("import_orders", "push_stock")]
TTL, POLL, MARGIN = 20.0, 2.0, 5.0


def keeper(store: Store, owner: str, **kwargs) -> LeaseKeeper:
    return LeaseKeeper(store, KEYS, owner=owner, ttl=TTL, poll=POLL, margin=MARGIN, **kwargs)


async def prepared(store: Store, *owners: str) -> list[LeaseKeeper]:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    keepers = [keeper(store, owner) for owner in owners]
    await store.run(leases.ensure, [lease_name(key) for key in KEYS])
    return keepers


async def look_all(keepers: list[LeaseKeeper], rounds: int = 3) -> None:
    for _ in range(rounds):
        for one in keepers:
            await one.look()
        await trio.sleep(POLL)


def assert_partition(keepers: list[LeaseKeeper]) -> None:
    owned = [key for one in keepers for key in one.owned()]
    assert sorted(owned) == sorted(KEYS), "every job owned exactly once"


async def test_replicas_split_the_jobs_by_integration(store: Store, autojump_clock) -> None:
    """Two replicas: two integrations each, both kinds of an integration on one replica."""
    a, b = await prepared(store, "replica-a", "replica-b")
    await look_all([a, b])
    assert_partition([a, b])
    for one in (a, b):
        integrations = {integration for integration, _ in one.owned()}
        assert len(integrations) == 2
        assert len(one.owned()) == 4


async def test_a_dead_replicas_jobs_move_within_ttl_plus_poll(store: Store, autojump_clock) -> None:
    """A replica that stops renewing (SIGKILL) loses its jobs to the survivor in ≤ TTL + poll."""
    a, b = await prepared(store, "replica-a", "replica-b")
    await look_all([a, b])
    died = trio.current_time()
    while len(b.owned()) < len(KEYS):
        await b.look()
        await trio.sleep(POLL)
    assert trio.current_time() - died <= TTL + POLL
    tokens = await store.read(leases.holdings)
    assert {h.owner for h in tokens} == {"replica-b"}


async def test_a_graceful_stop_hands_over_at_the_next_look(store: Store, autojump_clock) -> None:
    a, b = await prepared(store, "replica-a", "replica-b")
    await look_all([a, b])
    await a.release_all()
    await b.look()
    assert len(b.owned()) == len(KEYS)


async def test_a_paused_owner_cannot_write_after_takeover(store: Store, autojump_clock) -> None:
    """The fence: a job of a replica paused past its lease is refused by the store, and its
    run is cancelled when trust ends; the new owner writes with the next token."""
    a, b = await prepared(store, "replica-a", "replica-b")
    await a.look()
    key = ("amazon-us", "import_orders")
    assert a.holds(key)
    integration_id = await store.run(_integration_row)
    with a.fenced(key):
        await store.run(cursors.save, integration_id, "import_orders", Cursor(state={"by": "a"}))
    await trio.sleep(TTL + 1)  # a is paused: no look, trust and lease run out
    assert not a.holds(key)
    await b.look()
    assert b.holds(key)
    # the paused replica resumes inside a job that had started before the pause
    a._held[lease_name(key)].trusted_until = trio.current_time() + 60  # as if it had not noticed
    with pytest.raises(leases.LeaseLost):
        with a.fenced(key):
            await store.run(cursors.save, integration_id, "import_orders",
                            Cursor(state={"by": "a, stale"}))
    with b.fenced(key):
        await store.run(cursors.save, integration_id, "import_orders", Cursor(state={"by": "b"}))
    assert (await store.read(cursors.load, integration_id, "import_orders")).state == {"by": "b"}
    await a.look()
    assert not a.holds(key) and a.losses >= 1


async def test_a_run_is_cancelled_when_trust_runs_out(store: Store, autojump_clock) -> None:
    """No look (the database unreachable): the running job is cut at trusted_until."""
    (a,) = await prepared(store, "replica-a")
    await a.look()
    key = KEYS[0]
    started = trio.current_time()
    with a.fenced(key) as scope:
        await trio.sleep(3600)
    assert scope.cancelled_caught
    assert trio.current_time() - started <= TTL - MARGIN


async def test_keeper_run_wakes_jobs_it_wins_and_releases_on_exit(store: Store,
                                                                  autojump_clock) -> None:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    woken: list[tuple[str, str]] = []
    a = keeper(store, "replica-a", on_acquired=woken.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await trio.sleep(10 * POLL)
        assert sorted(woken) == sorted(KEYS)
        assert len(a.owned()) == len(KEYS)
        nursery.cancel_scope.cancel()
    assert all(h.owner is None for h in await store.read(leases.holdings))
    assert await store.read(leases.replicas) == []


def _integration_row(session) -> int:
    from marketsync.core.store import integrations

    return integrations.ensure_integration(session, alias="amazon-us", channel="amazon",
                                    account="na", marketplace="US", enabled=True)


async def test_status_shows_which_replica_owns_each_job(store: Store, autojump_clock) -> None:
    from marketsync.core.runtime.status import collect, render
    from marketsync.core.store import job_runs

    a, b = await prepared(store, "replica-a", "replica-b")
    integration_id = await store.run(_integration_row)
    await store.run(lambda s: job_runs.finished(s, integration_id, "import_orders", error=None,
                                                next_run_at=None))
    await look_all([a, b])
    owner = "replica-a" if a.holds(("amazon-us", "import_orders")) else "replica-b"
    report = await store.read(collect)
    assert report["replicas"] == ["replica-a", "replica-b"]
    (job,) = report["integrations"][0]["jobs"]
    assert job["owner"] == owner
    assert f"on {owner}" in render(report)
    await trio.sleep(TTL + 1)  # both gone: nobody owns anything
    report = await store.read(collect)
    assert report["replicas"] == [] and report["integrations"][0]["jobs"][0]["owner"] is None


async def test_a_stock_move_written_elsewhere_wakes_the_pushes(store: Store,
                                                                autojump_clock) -> None:
    """A sale imported by another replica (or a CLI count) moves the ledger: the keeper's
    next look asks this replica to push, without an in-process trigger."""
    from marketsync.core.domain import inventory, products

    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    moved: list[int] = []
    a = keeper(store, "replica-a", on_stock_moved=lambda: moved.append(1))
    await a.look()
    await a.look()
    assert moved == []  # nothing moved: nothing to push
    await store.run(lambda s: products.add_product(s, "MUG-1"))
    await store.run(lambda s: inventory.set_on_hand(s, "MUG-1", 7, note="count"))
    await a.look()
    assert moved == [1]
    await a.look()
    assert moved == [1]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_database_outage_is_logged_once_not_at_every_look(store_url, caplog,
                                                                  autojump_clock) -> None:
    """Ten minutes with PostgreSQL unreachable is 300 failed looks: one line when the
    outage starts, one when it ends, no traceback, and the jobs come back."""
    import logging

    from sqlalchemy.engine import make_url

    from .test_db_outage import CuttableProxy

    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    Store(store_url).upgrade()
    url = make_url(store_url)
    caplog.set_level(logging.DEBUG, logger="marketsync.core.runtime.replicas")
    async with trio.open_nursery() as nursery:
        proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
        await nursery.start(proxy.serve)
        proxied = Store(url.set(port=proxy.port).render_as_string(hide_password=False))
        errors: list[BaseException] = []
        a = keeper(proxied, "replica-a", on_error=errors.append)
        async with trio.open_nursery() as replica:
            await replica.start(a.run)
            assert len(a.owned()) == len(KEYS)
            proxy.cut()
            await trio.sleep(600)
            assert len(errors) >= 200  # every look failed and told the daemon
            assert not a.holds(KEYS[0])  # trust ran out meanwhile
            await nursery.start(proxy.serve)
            await trio.sleep(10 * POLL)
            assert a.holds(KEYS[0])
            replica.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    proxied.close()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    failed = [r for r in lines if "lease look failed" in r.getMessage()]
    back = [r for r in lines if "lease looks work again" in r.getMessage()]
    lapsed = [r for r in lines if "lapsed" in r.getMessage() or "lost the lease" in r.getMessage()]
    assert len(failed) == 1 and len(back) == 1, [r.getMessage() for r in lines]
    assert len(lapsed) == 1, [r.getMessage() for r in lapsed]  # not one line per lease
    assert failed[0].exc_info is None and "connection" in failed[0].getMessage().lower()
    assert not any(r.exc_info for r in lines)


async def test_a_look_when_nothing_changes_is_one_unit_of_work(store: Store,
                                                               autojump_clock) -> None:
    """The keeper looks every couple of seconds for as long as the daemon runs, so an idle
    daemon's cost is mostly its looks: heartbeat, leases, replicas and the stock ledger's
    newest row are read in one transaction, not four."""
    a = keeper(store, "replica-a", on_stock_moved=lambda: None)
    (_,) = await prepared(store, "replica-a")
    await look_all([a])
    assert len(a.owned()) == len(KEYS)
    units: list[str] = []
    run, read = store.run, store.read

    async def counted_run(fn, *args, **kwargs):
        units.append(getattr(fn, "__name__", repr(fn)))
        return await run(fn, *args, **kwargs)

    async def counted_read(fn, *args, **kwargs):
        units.append(getattr(fn, "__name__", repr(fn)))
        return await read(fn, *args, **kwargs)

    store.run, store.read = counted_run, counted_read
    for _ in range(5):
        await a.look()
        await trio.sleep(POLL)
    assert units == ["look"] * 5
    assert all(a.holds(key) for key in KEYS)
