"""The database's disk fills up in the middle of business, then space comes back.

SQLite is made full for real: ``PRAGMA max_page_count`` on every connection the daemon
checks out caps the file at its current size, so the next write that needs a new page
fails inside SQLite with SQLITE_FULL ("database or disk is full"), exactly the error a
full filesystem gives. A small loop device or tmpfs would need root, which CI has not.
Orders keep arriving at the channel meanwhile; the daemon must stay up, say why on
``/healthz``, hold its jobs, commit no partial page of orders, and once the cap is lifted
store every order exactly once.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import trio
from sqlalchemy import event, func, select

from marketsync.core.store import engine as store_engine
from marketsync.core.store.models import Order, StockMovement
from marketsync.core.web.server import create_web_app
from marketsync.plugins.amazon.sandbox import create_app

from .conftest import SANDBOX, SCENARIO

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

#: SQLite's own default ceiling: "no cap"
UNCAPPED = 1073741823


@pytest.fixture
def scenario_changes():
    """Only the orders this test places, and stock enough for them."""
    catalog = [dict(entry) for entry in SCENARIO["catalog"]]
    for entry in catalog:
        for key in ("mfn_quantity", "fba_quantity"):
            if key in entry:
                entry[key] = 5000
    return {"catalog": catalog, "history_days": 0,
            "generator": dict(SCENARIO["generator"], orders_per_day={})}


class DiskCap:
    """Caps the daemon's SQLite file at its size now (``fill``) or lifts it (``free``)."""

    def __init__(self, engine):
        self.pages: int | None = None
        event.listen(engine.pool, "checkout", self._apply)

    def _apply(self, dbapi_connection, _record, _proxy) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if self.pages is None:
                cursor.execute(f"PRAGMA max_page_count = {UNCAPPED}")
            else:
                # SQLite keeps the larger of this and the file's size: "no more pages"
                cursor.execute(f"PRAGMA max_page_count = {self.pages}")
        finally:
            cursor.close()

    def fill(self, path) -> None:
        import sqlite3
        probe = sqlite3.connect(path)
        try:
            self.pages = 1  # clamped to the file's current page count
            # use up the free list too, so the very next growth fails
            free = probe.execute("PRAGMA freelist_count").fetchone()[0]
            assert free < 50, f"{free} free pages: the cap would bite late"
        finally:
            probe.close()

    def free(self) -> None:
        self.pages = None


async def healthz(daemon) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_web_app(daemon), client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8470") as client:
        return await client.get("/healthz")


async def test_a_full_disk_pauses_the_daemon_and_loses_no_order(
        make_daemon, world, e2e_clock, tmp_path, monkeypatch):
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "full.sqlite"
    daemon = make_daemon(store_url=f"sqlite:///{path}",
                         integrations=[("amazon-us", "na", "US")])
    cap = DiskCap(daemon.store.engine)
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                base_url=SANDBOX)
    placed: list[str] = []

    async def place(count: int) -> None:
        for number in range(count):
            answer = await control.post("/_sandbox/orders", json={
                "marketplace": "US", "items": {"MUG-1": 1 + number % 3},
                "fulfilledBy": "MERCHANT"})
            assert answer.status_code == 201, answer.text
            placed.append(answer.json()["orderId"])

    exited = trio.Event()

    async def serve(task_status=trio.TASK_STATUS_IGNORED):
        try:
            await daemon.serve(task_status=task_status)
        finally:
            exited.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve)
        await place(5)
        await trio.sleep(1800)
        before = await daemon.store.read(lambda s: s.execute(
            select(func.count()).select_from(Order)).scalar_one())
        assert before == 5 and daemon.database.up

        # --- the disk is full ----------------------------------------------------------
        cap.fill(path)
        await place(40)  # more than the file's last free pages can take
        await trio.sleep(1800)
        assert not daemon.database.up, "40 orders fitted in a full file?"
        assert "database or disk is full" in daemon.database.reason
        assert daemon.scheduler.held and not exited.is_set()
        answer = await healthz(daemon)
        assert answer.status_code == 503 and "database or disk is full" in answer.text
        outages = daemon.database.outages
        await trio.sleep(3600)  # an hour full: still down (no flapping up and down), still up
        assert not daemon.database.up and daemon.database.outages == outages
        assert not exited.is_set()
        during = await daemon.store.read(lambda s: s.execute(
            select(Order.channel_order_id)).scalars().all())
        # whatever got in before the cap bit came in whole pages: never an order twice
        assert len(during) == len(set(during)) < 45

        # --- space again ------------------------------------------------------------------
        cap.free()
        await trio.sleep(120)  # probes back off to 30 s at most
        assert daemon.database.up and not daemon.scheduler.held
        assert (await healthz(daemon)).status_code == 200
        await place(5)
        await trio.sleep(3600)
        stored = await daemon.store.read(lambda s: s.execute(
            select(Order.channel_order_id)).scalars().all())
        doubled = await daemon.store.read(lambda s: s.execute(
            select(StockMovement.key).group_by(StockMovement.key)
            .having(func.count() > 1)).all())
        assert not exited.is_set()
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    await control.aclose()
    counts = Counter(stored)
    assert set(counts) == set(placed) and set(counts.values()) == {1}
    assert doubled == []
