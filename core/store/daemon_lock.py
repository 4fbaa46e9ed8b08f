"""SQLite serves one daemon: an exclusive lock file next to the database says which.

Two daemons on one SQLite file would each run every job with their own rate-limit
governor (issue 16: twice the calls, absolute stock pushes out of order, each overwriting
the other's integration state), and SQLite has no row to hold a lease in that a hung
process would lose. So ``marketsync run`` takes ``<database>.daemon.lock`` with
``flock``: the kernel drops it when the process dies however it dies (SIGKILL included),
so a stale lock never needs cleaning up, and the file's text names the holder (pid,
host, since when) for the one-line refusal a second daemon prints. Commands that are not
the daemon (``status``, ``stock set``, ``orders ship``) do not take it: SQLite's own
locking serialises their short writes with the daemon's.

``flock`` on a network file system is not reliable; the database must be on a local disk
anyway (SQLite's WAL needs shared memory).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from sqlalchemy.engine import URL

from marketsync.core import clock

from .engine import StoreError, is_memory_sqlite

SUFFIX = ".daemon.lock"


class DatabaseInUse(StoreError):
    """Another daemon holds the SQLite database."""


class DaemonLock:
    """The lock file of one SQLite database; hold it for the daemon's whole life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_url(cls, url: URL) -> "DaemonLock | None":
        """The lock for a SQLite file database; None for PostgreSQL (leases share the
        work there) and for an in-memory database (no other process can see it)."""
        if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
            return None
        database = Path(url.database).expanduser()
        return cls(database.with_name(database.name + SUFFIX))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise StoreError(f"cannot open the daemon lock {str(self.path)!r}: "
                             f"{error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        started = clock.isoformat(clock.now())
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {started}\n"
                  .encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it ("pid 12 on host h since …")."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[0] if text else "another process (it has not said which yet)"

    def refusal(self, database: str) -> str:
        """The one line a second daemon prints before it exits."""
        return (f"the database {database} is in use by a marketsync daemon: {self.holder()}; "
                "SQLite serves one daemon (stop that one, run this one with --standby to take "
                "over when it stops, or use PostgreSQL for several replicas)")

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

