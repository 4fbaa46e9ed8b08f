"""Database outages: the daemon stays up, says why on /healthz, pauses jobs and resumes.

SQLite: another connection holds the write lock for twenty minutes (past the busy
timeout, shortened here so the test waits real milliseconds, not 30 s). PostgreSQL: the
daemon reaches the server through a loopback proxy the test cuts and restores, so the
server is unreachable (connection refused) exactly as when it is down.
"""

from __future__ import annotations

import logging
import sqlite3
from functools import partial

import httpx
import pytest
import trio
from sqlalchemy.engine import make_url

from marketsync.core import clock
from marketsync.core.config.schema import parse_config
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.runtime.db_health import DatabaseHealth, DatabaseUnavailable, is_outage
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import Store, engine
from marketsync.core.store import integrations as store_integrations
from marketsync.core.store import job_runs
from marketsync.core.web.server import create_web_app

from .test_daemon import START, Scripted

OUTAGE = 20 * 60.0


@pytest.fixture
def mock_clock():
    return trio.testing.MockClock(autojump_threshold=0)


class CuttableProxy:
    """A loopback TCP proxy to PostgreSQL that the test can cut (refusing connections and
    dropping open ones) and restore on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self._scope: trio.CancelScope | None = None

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self._scope:
            listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()
            await trio.serve_listeners(self._pipe, listeners)

    def cut(self) -> None:
        assert self._scope is not None
        self._scope.cancel()

    async def _pipe(self, client: trio.SocketStream) -> None:
        async with client, await trio.open_tcp_stream(*self.target) as server:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._copy, client, server, nursery.cancel_scope)
                nursery.start_soon(self._copy, server, client, nursery.cancel_scope)

    @staticmethod
    async def _copy(source, sink, scope: trio.CancelScope) -> None:
        try:
            async for chunk in source:
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()


def make_daemon(url: str, tmp_path, channel: Scripted) -> Daemon:
    plugins = plugin_loading.build(builtin=(), extra=[channel], load_entry_points=False)
    text = (f"accounts:\n  a:\n    channel: {channel.name}\nintegrations:\n"
            f"  - alias: shop-x\n    account: a\n    marketplace: X\n")
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "c.yaml"), environ={})
    return Daemon(config, plugins=plugins, store=Store(url))


async def healthz(daemon: Daemon) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_web_app(daemon), client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8470") as client:
        return await client.get("/healthz")


async def test_the_daemon_rides_out_a_database_outage(backend, store_url, tmp_path,
                                                      monkeypatch, mock_clock, caplog):
    """Twenty minutes without a writable database: never exits, healthz 503 with the
    reason, no job starts meanwhile, and everything resumes (state and job health written)
    within a probe interval of its return."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    caplog.set_level(logging.INFO, logger="marketsync")
    clock.set_start(START)
    channel = Scripted("shop")
    async with trio.open_nursery() as outer:
        if backend == "postgresql":
            url = make_url(store_url)
            proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
            await outer.start(proxy.serve)
            store_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False)
        daemon = make_daemon(store_url, tmp_path, channel)
        await outer.start(daemon.serve)
        runner = daemon.runners["shop-x"]
        await trio.sleep(1800)
        assert runner.state is IntegrationState.LIVE and channel.imports >= 2
        assert (await healthz(daemon)).status_code == 200

        # --- the outage ------------------------------------------------------------------
        if backend == "sqlite":
            holder = sqlite3.connect(make_url(store_url).database, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long import holds it
            end_outage = holder.rollback
        else:
            proxy.cut()
            end_outage = partial(outer.start_soon, proxy.serve)
        await trio.sleep(700)  # the next import (every 10 min) meets the outage
        assert not daemon.database.up and daemon.scheduler.held
        answer = await healthz(daemon)
        assert answer.status_code == 503
        assert "database unavailable since 2026-11-02T12:" in answer.text
        assert "jobs paused" in answer.text
        if backend == "sqlite":
            assert "database is locked" in answer.text
        imports_during = channel.imports
        await trio.sleep(OUTAGE - 700)
        assert channel.imports == imports_during  # held: nothing started meanwhile
        assert runner.state is IntegrationState.LIVE  # an outage is not the channel's fault
        end_outage()

        # --- back ------------------------------------------------------------------------
        await trio.sleep(60)  # probes back off to 30 s at most
        assert daemon.database.up and not daemon.scheduler.held
        assert (await healthz(daemon)).status_code == 200
        await trio.sleep(1200)
        assert channel.imports >= imports_during + 2
        health = await daemon.store.read(job_runs.health)
        stored = await daemon.store.read(store_integrations.get_state, "shop-x")
        outer.cancel_scope.cancel()
    assert stored.state == "LIVE"
    assert [h.consecutive_failures for h in health if h.kind == "import_orders"] == [0]
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("db_health")]
    assert len([l for l in lines if "unavailable" in l]) == 1, lines  # once, not per write
    assert len([l for l in lines if "is back after" in l]) == 1, lines
    assert daemon.store.masked_url in lines[0]  # the URL as logs may show it (no password)


async def test_a_state_change_during_an_outage_is_written_when_it_is_back(
        tmp_path, monkeypatch, mock_clock):
    """The runner's state lives in memory while the database is down and is persisted by
    the recovery, so `marketsync status` never shows a stale state afterwards."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 100)
    clock.set_start(START)
    channel = Scripted("shop")
    path = tmp_path / "db.sqlite"
    daemon = make_daemon(f"sqlite:///{path}", tmp_path, channel)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        runner = daemon.runners["shop-x"]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        await runner.set_state(IntegrationState.ERROR, "seller account suspended")
        assert runner.state is IntegrationState.ERROR and not daemon.database.up
        holder.rollback()
        await trio.sleep(60)
        stored = await daemon.store.read(store_integrations.get_state, "shop-x")
        nursery.cancel_scope.cancel()
    assert (stored.state, stored.state_reason) == ("ERROR", "seller account suspended")


async def test_only_outages_count_and_bugs_are_raised(tmp_path, mock_clock):
    """An IntegrityError is a bug in what was asked, not an outage: raised at once, and the
    database stays up; an unreachable server gives up after the retries."""
    from sqlalchemy import text

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.upgrade()
    health = DatabaseHealth(store)

    def duplicate(session):
        session.execute(text("INSERT INTO products (sku, on_hand, reserved) VALUES ('A',0,0)"))
        session.execute(text("INSERT INTO products (sku, on_hand, reserved) VALUES ('A',0,0)"))

    with pytest.raises(Exception) as caught:
        await health.write(duplicate)
    assert not is_outage(caught.value) and health.up
    closed = Store("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    down = DatabaseHealth(closed)
    started = trio.current_time()
    with pytest.raises(DatabaseUnavailable, match="database unavailable: "):
        await down.write(lambda session: session.execute(text("SELECT 1")))
    assert not down.up and down.outages == 1
    assert trio.current_time() - started >= 1.0  # it backed off between attempts
    with pytest.raises(DatabaseUnavailable):  # already down: one attempt, no second log
        await down.write(lambda session: session.execute(text("SELECT 1")))
    assert down.outages == 1
    closed.close()
    store.close()


async def test_the_probe_writes_and_leaves_nothing_behind(store, mock_clock):
    """The recovery probe needs new space (so a full disk fails it) and rolls it back."""
    from sqlalchemy import inspect

    health = DatabaseHealth(store)
    assert await health._writable() and health.up
    assert await health._writable()  # twice: the scratch table did not stay
    tables = await store.read(lambda session: inspect(session.connection()).get_table_names())
    assert not [t for t in tables if "probe" in t]


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite's: tests/e2e/test_disk_full.py
async def test_postgresql_disk_full_is_an_outage_with_its_reason(backend, store, mock_clock):
    """A full disk on PostgreSQL comes as SQLSTATE 53100 (disk_full), "could not extend
    file": an outage, named, not a job's bug. The server's disk cannot be filled from a
    test without root or a superuser tablespace on a small filesystem, so the server is
    made to send that very error (the error path is real; the full disk is not)."""
    from sqlalchemy import text

    health = DatabaseHealth(store)

    def full(session):
        session.execute(text(
            "DO $$ BEGIN RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left "
            "on device' USING ERRCODE = 'disk_full'; END $$"))

    with pytest.raises(DatabaseUnavailable, match="No space left on device"):
        await health.write(full)
    assert not health.up and "could not extend file" in health.reason


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_deadlock_is_a_failed_job_not_an_outage(store):
    """Two transactions locking two products in opposite orders: PostgreSQL ends one with
    40P01. The database is up; counting that as an outage paused every job of the daemon
    (seen with three replicas in bench/scale.py)."""
    import threading

    from sqlalchemy import text

    from marketsync.core.domain import inventory

    def setup(session):
        inventory.ensure_product(session, "A")
        inventory.ensure_product(session, "B")
    store.run_blocking(setup)
    both_locked_one = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def lock(first: str, second: str) -> None:
        try:
            with store.engine.begin() as connection:
                connection.execute(text("UPDATE products SET on_hand = 1 WHERE sku = :s"),
                                   {"s": first})
                both_locked_one.wait()
                connection.execute(text("UPDATE products SET on_hand = 2 WHERE sku = :s"),
                                   {"s": second})
        except Exception as error:  # noqa: BLE001 - one of the two is the victim
            errors.append(error)

    threads = [threading.Thread(target=lock, args=pair) for pair in (("A", "B"), ("B", "A"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    (victim,) = errors
    assert getattr(victim.orig, "sqlstate", None) == "40P01"
    assert not is_outage(victim)
    assert is_outage(sa_exc_operational("connection refused"))


def sa_exc_operational(message: str):
    from sqlalchemy import exc as sa_exc

    return sa_exc.OperationalError("SELECT 1", {}, Exception(message))
