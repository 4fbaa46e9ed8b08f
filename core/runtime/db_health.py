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
* one task probes with a write transaction on a growing backoff and, when one commits,
  releases the jobs.

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
from marketsync.core.store import StoreError

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
    """The database is unusable right now (as opposed to a bug in what was asked of it)."""
    while error is not None:
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


def _probe(session: Any) -> None:
    # on SQLite the writer's BEGIN IMMEDIATE takes the write lock: the probe fails while
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

    async def watch(self) -> None:
        """While the database is down, probe it; when a probe commits, resume everything."""
        while True:
            await self._went_down.wait()
            failures = 0
            while not self.up:
                failures += 1
                await trio.sleep(PROBE_BACKOFF.delay(failures, self._rng))
                try:
                    await self.store.run(_probe)
                except Exception as error:  # noqa: BLE001 - anything: still down
                    if is_outage(error):
                        self.failed(error)
                    else:
                        log.exception("database probe failed unexpectedly")
                    continue
                if self._recovered() and self._on_up is not None:
                    await self._on_up()
