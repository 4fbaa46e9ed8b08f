"""Store: transactions on worker threads, SQLite settings, time, and failures people see."""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import trio
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from marketsync.core import clock
from marketsync.core.store import Store, StoreError, mask_url
from marketsync.core.store.models import Product, StockMovement

UTC = timezone.utc


def _add_product(session: Session, sku: str, on_hand: int = 0) -> int:
    product = Product(sku=sku, on_hand=on_hand)
    session.add(product)
    session.flush()
    return product.id


def _skus(session: Session) -> list[str]:
    return list(session.execute(select(Product.sku).order_by(Product.sku)).scalars())


async def test_run_commits_on_success(store: Store) -> None:
    """What a unit of work writes is visible to the next one."""
    product_id = await store.run(_add_product, "A-1", 5)
    assert isinstance(product_id, int)
    assert await store.read(_skus) == ["A-1"]


async def test_run_rolls_back_and_reraises_on_error(store: Store) -> None:
    """An exception undoes everything the unit of work wrote and reaches the caller."""

    def add_then_fail(session: Session) -> None:
        _add_product(session, "B-1")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await store.run(add_then_fail)
    assert await store.read(_skus) == []


async def test_read_never_commits(store: Store) -> None:
    """store.read is for reading: a write made inside it is discarded."""
    await store.read(_add_product, "R-1")
    assert await store.read(_skus) == []


async def test_run_passes_keyword_arguments(store: Store) -> None:
    """Unit-of-work functions may take keywords too."""
    await store.run(_add_product, "K-1", on_hand=7)
    on_hand = await store.read(
        lambda s: s.execute(select(Product.on_hand).where(Product.sku == "K-1")).scalar_one()
    )
    assert on_hand == 7


async def test_ledger_key_is_unique(store: Store) -> None:
    """A second movement with the same key is refused, so an effect applies only once."""
    product_id = await store.run(_add_product, "L-1")

    def move(session: Session, key: str) -> None:
        session.add(StockMovement(product_id=product_id, key=key, delta_reserved=1, reason="reserve"))

    await store.run(move, "order-item:1:reserve")
    with pytest.raises(IntegrityError):
        await store.run(move, "order-item:1:reserve")
    await store.run(move, "order-item:2:reserve")
    keys = await store.read(
        lambda s: list(s.execute(select(StockMovement.key).order_by(StockMovement.key)).scalars())
    )
    assert keys == ["order-item:1:reserve", "order-item:2:reserve"]


async def test_aware_datetimes_round_trip_as_utc(store: Store) -> None:
    """A time stored with any offset reads back as the same instant, aware, in UTC."""
    berlin = timezone(timedelta(hours=2))
    moment = datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=berlin)

    def write(session: Session) -> None:
        session.add(Product(sku="T-1", deleted_at=moment))

    await store.run(write)
    stored = await store.read(
        lambda s: s.execute(select(Product.deleted_at).where(Product.sku == "T-1")).scalar_one()
    )
    assert stored == moment
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored.hour == 12  # 14:30 at +02:00 is 12:30 UTC


async def test_stored_times_compare_in_sql(store: Store) -> None:
    """Times filter correctly in SQL whatever offset they were given with (stored as UTC)."""
    base = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    tokyo = timezone(timedelta(hours=9))

    def write(session: Session) -> None:
        session.add(Product(sku="early", deleted_at=base.astimezone(tokyo)))  # 21:00 +09:00
        session.add(Product(sku="late", deleted_at=base + timedelta(hours=1)))

    await store.run(write)
    later = await store.read(
        lambda s: list(
            s.execute(
                select(Product.sku).where(Product.deleted_at > base + timedelta(minutes=30))
            ).scalars()
        )
    )
    assert later == ["late"]


async def test_naive_datetime_is_refused(store: Store) -> None:
    """A naive datetime is an error naming the problem, never silently taken as UTC."""

    def write(session: Session) -> None:
        session.add(Product(sku="N-1", deleted_at=datetime(2026, 1, 1, 12, 0)))

    with pytest.raises(StatementError, match="naive datetime"):
        await store.run(write)


async def test_timestamps_come_from_the_trio_clock(store: Store, autojump_clock) -> None:
    """Rows written on worker threads carry trio's (mock) wall time, not the real one."""
    start = datetime(2030, 3, 4, 5, 6, 7, tzinfo=UTC)
    clock.set_start(start)
    await trio.sleep(3600)
    await store.run(_add_product, "C-1")
    created = await store.read(
        lambda s: s.execute(select(Product.created_at).where(Product.sku == "C-1")).scalar_one()
    )
    assert created == start + timedelta(hours=1)


async def test_cancelled_caller_still_commits(store: Store) -> None:
    """Cancelling the waiting task does not abandon a unit of work already running:
    it finishes and commits, so its outcome is never half-known."""
    entered, release = threading.Event(), threading.Event()

    def slow_insert(session: Session) -> None:
        entered.set()
        release.wait(10)
        _add_product(session, "S-1")

    scope = trio.CancelScope()
    finished = []

    async def caller() -> None:
        with scope:
            await store.run(slow_insert)
            finished.append(True)
            await trio.sleep_forever()  # the pending cancellation lands here

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        await trio.to_thread.run_sync(entered.wait, 10)
        scope.cancel()
        release.set()
    assert finished == [True] and scope.cancelled_caught
    assert await store.read(_skus) == ["S-1"]


async def test_concurrent_writers_do_not_lose_updates(store: Store) -> None:
    """Many tasks writing at once all succeed ("database is locked" never surfaces)."""
    product_id = await store.run(_add_product, "W-1")

    def bump(session: Session) -> None:
        session.execute(
            update(Product).where(Product.id == product_id).values(on_hand=Product.on_hand + 1)
        )

    async def writer() -> None:
        for _ in range(10):
            await store.run(bump)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(writer)
    on_hand = await store.read(
        lambda s: s.execute(select(Product.on_hand).where(Product.id == product_id)).scalar_one()
    )
    assert on_hand == 80


async def test_sqlite_two_stores_on_one_file_wait_for_each_other(tmp_path) -> None:
    """Two Stores on one SQLite file (the daemon and a CLI command in another process)
    doing read-then-write transactions at once: BEGIN IMMEDIATE plus the busy timeout make
    the second wait instead of failing with "database is locked", and no update is lost."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = Store(url), Store(url)
    try:
        first.upgrade()
        product_id = await first.run(_add_product, "X-1")

        def read_then_write(session: Session) -> None:
            product = session.get(Product, product_id)
            assert product is not None
            seen = product.on_hand
            product.on_hand = seen + 1

        async def writer(db: Store) -> None:
            for _ in range(15):
                await db.run(read_then_write)

        async with trio.open_nursery() as nursery:
            for db in (first, second, first, second):
                nursery.start_soon(writer, db)
        total = await second.read(lambda s: s.get(Product, product_id).on_hand)
        assert total == 60
    finally:
        first.close()
        second.close()


def test_sqlite_uses_wal_foreign_keys_and_busy_timeout(tmp_path) -> None:
    """SQLite connections run in WAL mode with foreign keys enforced and a busy timeout."""
    with Store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


async def test_foreign_keys_are_enforced(store: Store) -> None:
    """A movement for a product that does not exist is refused on both databases."""

    def orphan(session: Session) -> None:
        session.add(StockMovement(product_id=999_999, key="orphan", reason="test"))

    with pytest.raises(IntegrityError):
        await store.run(orphan)


def test_sqlite_creates_the_parent_directory(tmp_path) -> None:
    """A database file in a directory that does not exist yet: the directory is created."""
    path = tmp_path / "var" / "lib" / "marketsync" / "db.sqlite"
    with Store(f"sqlite:///{path}") as store:
        store.check()
    assert path.exists()


def test_sqlite_unusable_directory_is_a_clear_error(tmp_path) -> None:
    """A path under a regular file cannot hold a database: the error names the directory."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the directory .*not-a-dir"):
        Store(f"sqlite:///{blocker / 'db.sqlite'}")


def test_in_memory_sqlite_works_across_threads() -> None:
    """sqlite:// (tests, demos) keeps one database for the whole Store."""
    with Store("sqlite://") as store:
        store.upgrade()

        async def main() -> list[str]:
            await store.run(_add_product, "M-1")
            return await store.read(_skus)

        assert trio.run(main) == ["M-1"]


def test_run_blocking_for_synchronous_callers(store: Store) -> None:
    """CLI commands outside trio use run_blocking with the same transaction rules."""
    store.run_blocking(_add_product, "CLI-1")
    with pytest.raises(IntegrityError):
        store.run_blocking(_add_product, "CLI-1")
    assert store.run_blocking(_skus) == ["CLI-1"]


def test_unreachable_postgresql_names_url_without_password() -> None:
    """The error names host, port and database but never the password."""
    store = Store("postgresql+psycopg://marketsync:s3cret-pw@127.0.0.1:1/orders")
    try:
        with pytest.raises(StoreError) as caught:
            store.check()
    finally:
        store.close()
    message = str(caught.value)
    assert "cannot reach the database" in message
    assert "marketsync:***@127.0.0.1:1/orders" in message
    assert "s3cret-pw" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_unreachable_sqlite_names_the_file(tmp_path) -> None:
    """A SQLite path that is a directory cannot be opened: the error says which."""
    (tmp_path / "dir.db").mkdir()
    with Store(f"sqlite:///{tmp_path / 'dir.db'}") as store:
        with pytest.raises(StoreError, match=r"cannot reach the database sqlite:///.*dir\.db"):
            store.check()


def test_check_passes_on_a_reachable_database(store_url: str) -> None:
    with Store(store_url) as store:
        store.check()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://u:pw@db:5432/x", "postgresql+psycopg://u:***@db:5432/x"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:////var/lib/m.db", "sqlite:////var/lib/m.db"),
        ("not a url://u:p/w@host", "not a url://***@host"),
        ("::nonsense:pw@x", "***@x"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    """Passwords are replaced by *** even in URLs SQLAlchemy cannot parse."""
    assert mask_url(url) == masked


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="not supported"):
        Store("mysql://u:pw@host/db")
    with pytest.raises(StoreError, match="is not valid") as caught:
        Store("::nonsense:pw@")
    assert "pw" not in str(caught.value).replace("password", "")


def test_plain_postgresql_url_uses_psycopg() -> None:
    """postgresql:// is read as psycopg 3 (psycopg2 is not a dependency)."""
    with Store("postgresql://u:pw@127.0.0.1:1/x") as store:
        assert store.url.drivername == "postgresql+psycopg"
        assert "pw" not in repr(store)


async def test_money_round_trips_exactly(store: Store) -> None:
    """Prices come back as the same Decimal, to the cent, up to the column's 12 digits."""
    from decimal import Decimal

    from marketsync.core.store import integrations
    from marketsync.core.store.models import Listing

    prices = [Decimal("0.01"), Decimal("19.99"), Decimal("1234.50"), Decimal("9999999999.99")]

    def write(session: Session) -> None:
        integration_id = integrations.ensure_integration(
            session, alias="amazon-de", channel="amazon", account="acme", marketplace="DE"
        )
        for number, price in enumerate(prices):
            session.add(Listing(integration_id=integration_id, channel_sku=f"S{number}",
                                price=price, currency="EUR"))

    await store.run(write)
    stored = await store.read(
        lambda s: list(s.execute(select(Listing.price).order_by(Listing.channel_sku)).scalars())
    )
    assert stored == prices
    assert all(isinstance(price, Decimal) for price in stored)


async def test_value_sets_are_enforced_by_the_database(store: Store) -> None:
    """A state outside the declared set is refused even when written with plain SQL."""
    from marketsync.core.store import integrations

    await store.run(
        integrations.ensure_integration,
        alias="amazon-de", channel="amazon", account="acme", marketplace="DE",
    )

    def bogus(session: Session) -> None:
        session.execute(text("UPDATE integrations SET state = 'SLEEPING'"))

    with pytest.raises(IntegrityError, match="ck_integrations_state"):
        await store.run(bogus)


@pytest.mark.parametrize("backend", ["postgresql"] if os.environ.get("MARKETSYNC_TEST_PG", "1") != "0"
                         else [])  # only PostgreSQL detects deadlocks; SQLite has one writer
def test_a_deadlock_victim_runs_its_unit_of_work_again(store: Store) -> None:
    """Two writers lock two products in opposite orders (a replica's push and a CLI stock
    change did, in the fail-over test): PostgreSQL ends one, and instead of failing the
    job or the command, the store runs that unit of work again; both changes land."""
    store.run_blocking(lambda s: s.add_all([Product(sku="A", title="a"),
                                            Product(sku="B", title="b")]))
    meet = threading.Barrier(2, timeout=10)
    tries: Counter[str] = Counter()

    def writer(first: str, second: str, title: str):
        def work(session) -> None:
            tries[title] += 1
            rows = {p.sku: p for p in session.execute(select(Product)).scalars()}
            rows[first].title = title
            session.flush()
            if tries[title] == 1:
                meet.wait()  # both hold their first row now
            rows[second].title = title
            session.flush()
        return lambda: store.run_blocking(work)

    errors: list[BaseException] = []

    def run(fn) -> None:
        try:
            fn()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(writer("A", "B", "one"),)),
               threading.Thread(target=run, args=(writer("B", "A", "two"),))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(tries.values()) == [1, 2]  # one victim, run once more
    titles = store.run_blocking(lambda s: {p.title for p in s.execute(select(Product)).scalars()})
    assert len(titles) == 1  # whichever ran last set both rows
