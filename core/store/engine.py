"""Engines configured for how marketsync uses each database.

SQLite (the default): one file, WAL so readers never block the writer, foreign keys
enforced (SQLite leaves them off per connection), a busy timeout so a second process
(``marketsync status``, a CLI stock correction) waits instead of failing at once, and
transactions begun by us rather than by the sqlite3 module. The module's legacy mode
starts a transaction only at the first write, so a read-then-write unit of work could be
refused with SQLITE_BUSY without waiting; writers therefore open with ``BEGIN IMMEDIATE``
(the write lock up front, honouring the busy timeout) and readers with a plain ``BEGIN``
(SQLAlchemy's documented recipe, "Serializable isolation / Savepoints / Transactional DDL").

PostgreSQL: the psycopg 3 driver (``postgresql+psycopg://``); plain ``postgresql://`` URLs
are read as psycopg because psycopg2 is not a dependency.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from marketsync.core.errors import MarketsyncError

#: execution option read by the SQLite "begin" hook; set on the writer engine
BEGIN_OPTION = "marketsync_sqlite_begin"
WRITER_OPTIONS = {BEGIN_OPTION: "BEGIN IMMEDIATE"}
#: milliseconds a connection waits for another process's write lock
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: seconds to wait for a PostgreSQL server before calling it unreachable
PG_CONNECT_TIMEOUT = 10


class StoreError(MarketsyncError):
    """The database cannot be used: unreachable, unwritable path, bad URL, old schema."""


def mask_url(url: str | URL) -> str:
    """The URL fit for logs and error messages: any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # not a URL SQLAlchemy understands: hide all credentials rather than guess their end
        head, at, host = str(url).rpartition("@")
        if not at:
            return str(url)
        scheme, separator, _ = head.partition("://")
        return f"{scheme}{separator}***@{host}" if separator else f"***@{host}"


def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL, with an error that names the (masked) URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"database URL {mask_url(url)!r} is not valid; expected e.g. "
            "sqlite:////var/lib/marketsync/marketsync.db or "
            "postgresql+psycopg://user:password@host/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database URL {mask_url(parsed)!r}: {backend!r} is not supported "
            "(use sqlite or postgresql+psycopg)"
        )
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the per-backend settings described in the module doc."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo, **kwargs)
    connect_args = dict(kwargs.pop("connect_args", {}))
    if "connect_timeout" not in parsed.query:
        connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT)
    return create_engine(
        parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args, **kwargs
    )


def _create_private(path: Path) -> None:
    """Create an empty database file 0600 (SQLite gives its -wal and -shm files the same
    mode); an existing file keeps its mode."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def _sqlite_engine(url: URL, *, echo: bool, **kwargs: Any) -> Engine:
    if is_memory_sqlite(url):
        # one shared connection, or every checkout would see a different empty database
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        path = Path(url.database).expanduser()
        try:
            # the state directory and the database hold orders and (sealed) buyer data: the
            # seller's alone by default, whatever the umask; existing ones are left as they are
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(path)
        except OSError as error:
            raise StoreError(
                f"cannot create the directory {str(path.parent)!r} for the database "
                f"{mask_url(url)!r}: {error.strerror or error}"
            ) from None
    engine = create_engine(url, echo=echo, **kwargs)
    memory = is_memory_sqlite(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # we emit BEGIN ourselves (see module doc); COMMIT/ROLLBACK still work
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # with WAL, NORMAL loses no committed transaction on an application crash
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql(options.get(BEGIN_OPTION, "BEGIN"))

    return engine
