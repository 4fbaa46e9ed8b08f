"""The store: marketsync's database, used from trio through worker threads.

SQLAlchemy's async layer is asyncio-only, so the daemon uses the synchronous ORM and
runs each unit of work in ``trio.to_thread.run_sync`` (aesthetics §5.3): one Session per
call, confined to its thread, one transaction per call. Unit-of-work functions are plain
sync functions ``fn(session, *args)`` living in the modules next to this one
(``cursors``, ``submissions``, ``quarantine``, ``integrations``, ``job_runs``,
``leases``)::

    store = Store("sqlite:////var/lib/marketsync/marketsync.db")
    store.upgrade()
    cursor = await store.run(cursors.load, integration_id, "import_orders")

On SQLite one writer runs at a time (a ``CapacityLimiter(1)``; WAL lets readers go on),
on PostgreSQL up to the connection pool's size. Threads are never abandoned on
cancellation: a commit that has started finishes, so a cancelled job cannot leave a
half-known outcome behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import trio
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from marketsync.core import clock

from . import leases, migrate
from .engine import (
    WRITER_OPTIONS,
    StoreError,
    create_store_engine,
    is_memory_sqlite,
    mask_url,
    parse_url,
)
from .timing import pinned_now, transaction_now

__all__ = ["Store", "StoreError", "mask_url", "transaction_now"]

P = ParamSpec("P")
R = TypeVar("R")

#: concurrent PostgreSQL units of work; below the pool's size + overflow (5 + 10)
PG_CONCURRENCY = 8
#: tries of a unit of work that PostgreSQL ended as a deadlock or serialization victim
CONFLICT_RETRIES = 3
#: SQLSTATEs of a transaction ended only because another one conflicted with it
CONFLICT_STATES = frozenset({"40P01", "40001"})
#: concurrent SQLite readers (WAL: they do not block the writer or each other)
SQLITE_READERS = 4


class Store:
    """Engine, sessions and migrations for one database URL."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = parse_url(url)
        self.engine = create_store_engine(self.url, echo=echo)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        writer_engine = self.engine.execution_options(**WRITER_OPTIONS)
        self._writer = sessionmaker(writer_engine, expire_on_commit=False)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        if not self.is_sqlite:
            self._write_limiter = self._read_limiter = trio.CapacityLimiter(PG_CONCURRENCY)
        elif is_memory_sqlite(self.url):
            # a single shared connection: everything takes turns
            self._write_limiter = self._read_limiter = trio.CapacityLimiter(1)
        else:
            self._write_limiter = trio.CapacityLimiter(1)
            self._read_limiter = trio.CapacityLimiter(SQLITE_READERS)

    def __repr__(self) -> str:
        return f"<Store {self.masked_url}>"

    @property
    def masked_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return mask_url(self.url)

    # --- lifecycle (blocking: call before the trio run or through trio.to_thread) --------

    def check(self) -> None:
        """Connect once; raise StoreError naming the (masked) URL when that fails."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as error:
            raise StoreError(
                f"cannot reach the database {self.masked_url}: {self._reason(error)}"
            ) from None

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision`` (default: the newest shipped)."""
        try:
            migrate.upgrade(self.engine, revision)
        except SQLAlchemyError as error:
            raise StoreError(
                f"cannot migrate the database {self.masked_url}: {self._reason(error)}"
            ) from error

    def revision(self) -> str | None:
        """The schema revision the database is at; None when never migrated."""
        return migrate.current(self.engine)

    def needs_upgrade(self) -> bool:
        return self.revision() != migrate.head()

    def close(self) -> None:
        """Close pooled connections; the Store must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- units of work --------------------------------------------------------------------

    async def run(
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``fn(session, *args)`` on a worker thread in one write transaction.

        Commits when ``fn`` returns, rolls back and re-raises when it raises. Rows read in
        ``fn`` stay readable afterwards (``expire_on_commit=False``) but are detached:
        return plain values rather than ORM objects where you can.

        Inside a leased job (``leases.current_fence`` is set) the transaction first checks
        the lease and raises ``leases.LeaseLost`` instead of writing once another replica
        has taken the job over.
        """
        now = clock.now()
        fence = leases.current_fence.get()
        return await clock.run_in_thread(
            self._transaction,
            self._writer,
            now,
            fn,
            args,
            kwargs,
            fence,
            abandon_on_cancel=False,
            limiter=self._write_limiter,
        )

    async def read(
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Like ``run`` for code that only reads: never commits, and on SQLite does not
        wait for the writer."""
        now = clock.now()
        return await clock.run_in_thread(
            self._readonly,
            now,
            fn,
            args,
            kwargs,
            abandon_on_cancel=False,
            limiter=self._read_limiter,
        )

    def run_blocking(
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """``run`` for synchronous callers outside trio (CLI commands, scripts)."""
        return self._transaction(self._writer, clock.now(), fn, args, kwargs)

    def read_blocking(
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """``read`` for synchronous callers: checks that must not hold the write lock."""
        return self._readonly(clock.now(), fn, args, kwargs)

    @staticmethod
    def _transaction(
        maker: sessionmaker[Session],
        now: Any,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fence: leases.Fence | None = None,
    ) -> R:
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                with pinned_now(now), maker() as session, session.begin():
                    if fence is not None:
                        leases.check_member(session, fence)
                    return fn(session, *args, **kwargs)
            except OperationalError as error:
                # PostgreSQL ends one of two transactions that wait on each other (a
                # replica's push and a CLI stock change, say): the loser rolled back as a
                # whole, so the unit of work runs again from the start
                if attempt == CONFLICT_RETRIES or not _conflict(error):
                    raise
                time.sleep(0.02 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _readonly(
        self, now: Any, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        with pinned_now(now), self._reader() as session:
            try:
                return fn(session, *args, **kwargs)
            finally:
                session.rollback()

    def _reason(self, error: SQLAlchemyError) -> str:
        """The driver's first line, with the password scrubbed should a driver echo it."""
        original = getattr(error, "orig", None) or error
        reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
        password = self.url.password
        if password:
            reason = reason.replace(str(password), "***")
        return reason


def _conflict(error: OperationalError) -> bool:
    """A deadlock or serialization failure: nothing is wrong with the work itself."""
    return getattr(error.orig, "sqlstate", None) in CONFLICT_STATES
