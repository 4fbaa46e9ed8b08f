"""Database outages the daemon rides out instead of dying of them.

The database goes away in ordinary ways: another process holds SQLite's write lock past
the busy timeout (a long CSV import, a backup), the disk fills, PostgreSQL restarts or
fails over. None of these is a reason for the daemon to exit: systemd would restart it
into the same outage, and every restart costs a credentials check per integration.
Instead, while the database cannot be written:

* the scheduler holds every job (a job could do nothing useful without its cursor);
* bookkeeping writes (job health, integration states) retry a few times with backoff and
  are then left for later; an integration's state is written again once it is back;
* ``/healthz`` answers 503 with the reason and since when (a read may still work under
  WAL, so a ``SELECT 1`` alone would say "ok" while every write fails);
* one task probes on a growing backoff with a write that needs new space (rolled back)
  and, when one goes through, releases the jobs: a full disk still lets a bare
  transaction begin, so a lighter probe would call it back and the daemon would flap.

One log line when the outage starts and one when it ends, never one per failed write.
Only errors that mean "the database is not usable right now" count (SQLAlchemy's
``OperationalError`` family: locked, disk full, connection refused or lost); an
``IntegrityError`` or a programming error is a bug and stays the job's failure.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from marketsync.core import clock
from marketsync.core.errors import MarketsyncError
from marketsync.core.runtime.backoff import Backoff
from marketsync.core.store import CONFLICT_STATES, StoreError

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.store import Store

log = logging.getLogger(__name__)

#: write attempts of one bookkeeping write while the database seems up (1 while it is down)
WRITE_ATTEMPTS = 3
WRITE_BACKOFF = Backoff(base=1.0, cap=8.0, jitter=0.1)
#: probes while down: 2 s, 4 s, ... then every 30 s, so recovery is noticed within ~30 s
PROBE_BACKOFF = Backoff(base=2.0, cap=30.0, jitter=0.1)

_OUTAGES = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
            sa_exc.TimeoutError, StoreError)


def is_outage(error: BaseException | None) -> bool:
    """The database is unusable right now (as opposed to a bug in what was asked of it).

    A deadlock or serialization failure is an OperationalError too, but the database is
    fine: two transactions (two replicas importing one account's SKUs) met, and the one
    that lost ran again (``Store.run``) until it lost too often. That fails the job, which
    runs again later; it must not pause every job as an outage would."""
    while error is not None:
        if getattr(getattr(error, "orig", None), "sqlstate", None) in CONFLICT_STATES:
            return False
        if isinstance(error, _OUTAGES):
            return True
        error = error.__cause__
    return False


def describe(error: BaseException) -> str:
    """The driver's first line, without the SQL statement SQLAlchemy appends."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    first = lines[0] if lines else type(original).__name__
    return first[:200]


class DatabaseUnavailable(MarketsyncError):
    """A bookkeeping write gave up for now; the database is marked down."""


#: bytes the probe writes (and rolls back): more than a page, so a full disk refuses it
PROBE_BYTES = 64 * 1024
_PROBE_TABLE = "marketsync_space_probe"


class _ProbeWrote(Exception):
    """Raised by the probe once its write went through, so its transaction rolls back."""


def _probe(session: Any) -> None:
    """A write that needs new space, rolled back by raising ``_ProbeWrote``.

    ``SELECT 1`` is not enough: on SQLite the writer's BEGIN IMMEDIATE does notice a
    write lock held elsewhere, but a full disk lets a transaction begin, read and even
    rewrite pages it already has. A probe that only began would call a full database
    "back", the next job would fail again, and the daemon would flap between up and
    down every few seconds. So the probe creates a scratch table and puts ``PROBE_BYTES``
    of incompressible data in it, in the transaction it then rolls back (DDL is
    transactional on both backends): nothing is left behind, and it fails exactly when
    the database cannot grow."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"CREATE TABLE {_PROBE_TABLE} (filler text)"))
        # stored as written, not compressed into a few bytes
        session.execute(text(f"ALTER TABLE {_PROBE_TABLE} ALTER filler SET STORAGE EXTERNAL"))
        session.execute(text(
            f"INSERT INTO {_PROBE_TABLE} SELECT string_agg(md5(random()::text), '') "
            f"FROM generate_series(1, {PROBE_BYTES // 32})"))
    else:
        session.execute(text(f"CREATE TABLE {_PROBE_TABLE} (filler BLOB)"))
        session.execute(text(f"INSERT INTO {_PROBE_TABLE} VALUES (randomblob({PROBE_BYTES}))"))
    raise _ProbeWrote


def _begin(session: Any) -> None:
    # on SQLite the writer's BEGIN IMMEDIATE takes the write lock: this fails while
    # another process holds it, which a read would not notice
    session.execute(text("SELECT 1"))


class DatabaseHealth:
    """Whether the daemon can write its database now, and what to do when that changes."""

    def __init__(
        self,
        store: "Store",
        *,
        on_down: Callable[[], None] = lambda: None,
        on_up: Callable[[], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.reason: str | None = None
        self.since: datetime | None = None
        self.outages = 0
        self._on_down = on_down
        self._on_up = on_up
        self._rng = rng or random.Random()
        self._went_down = trio.Event()

    @property
    def up(self) -> bool:
        return self.reason is None

    def failed(self, error: BaseException) -> None:
        """Mark the database down (or update why); holds the jobs on the first failure."""
        reason = describe(error)
        if self.reason is None:
            self.since = clock.now()
            self.outages += 1
            log.error("database %s unavailable: %s; jobs paused until it is back "
                      "(the daemon keeps running)", self.store.masked_url, reason)
            self.reason = reason
            self._went_down.set()
            self._on_down()
        else:
            self.reason = reason

    def _recovered(self) -> bool:
        if self.reason is None:
            return False
        took = clock.now() - self.since if self.since else None
        log.warning("database %s is back after %s; jobs resume", self.store.masked_url,
                    str(took).split(".")[0] if took is not None else "an outage")
        self.reason = self.since = None
        self._went_down = trio.Event()
        return True

    async def write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``store.run`` for bookkeeping: retried on an outage, then DatabaseUnavailable.

        Anything that is not an outage is raised at once, as ``store.run`` would."""
        attempts = WRITE_ATTEMPTS if self.up else 1
        for attempt in range(1, attempts + 1):
            try:
                value = await self.store.run(fn, *args, **kwargs)
            except Exception as error:
                if not is_outage(error):
                    raise
                self.failed(error)
                if attempt == attempts:
                    raise DatabaseUnavailable(f"database unavailable: {self.reason}") from error
                await trio.sleep(WRITE_BACKOFF.delay(attempt, self._rng))
            else:
                return value
        raise AssertionError("unreachable")  # pragma: no cover

    async def _writable(self) -> bool:
        """One probe: True when the database took a write that needed space."""
        try:
            await self.store.run(_probe)
        except _ProbeWrote:
            return True  # it wrote, and rolled back
        except Exception as error:  # noqa: BLE001 - anything: still down
            if is_outage(error):
                self.failed(error)
                return False
            # not an outage: the scratch table itself was refused (a role without the
            # CREATE right, say); a write transaction that begins is the best sign left
            log.warning("database probe could not write its scratch table (%s); "
                        "probing with a bare write transaction", describe(error))
        try:
            await self.store.run(_begin)
        except Exception as error:  # noqa: BLE001
            if is_outage(error):
                self.failed(error)
            else:
                log.exception("database probe failed unexpectedly")
            return False
        return True

    async def watch(self) -> None:
        """While the database is down, probe it; when a probe commits, resume everything."""
        while True:
            await self._went_down.wait()
            failures = 0
            while not self.up:
                failures += 1
                await trio.sleep(PROBE_BACKOFF.delay(failures, self._rng))
                if not await self._writable():
                    continue
                if self._recovered() and self._on_up is not None:
                    await self._on_up()
