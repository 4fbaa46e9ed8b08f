"""Schema migrations run from Python, so an installed daemon can migrate itself.

mlflow's pattern: the alembic environment ships inside the package, the configuration is
built here at run time (no ``alembic.ini`` is read), and alembic gets our own open
connection through ``config.attributes["connection"]`` (the alembic cookbook's
shared-connection recipe), which also keeps in-memory SQLite working.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine

from .engine import WRITER_OPTIONS, StoreError, create_store_engine

MIGRATIONS = Path(__file__).with_name("migrations")
#: any constant; replicas starting together queue on it instead of racing to migrate
_PG_MIGRATION_LOCK = 0x6D61726B  # "mark"


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config pointing at the packaged migrations, optionally on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision shipped with this version of marketsync."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "no migrations are packaged"
    return revision


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; a no-op when it is there already."""
    engine, owned = _engine(engine_or_url)
    try:
        writer = engine.execution_options(**WRITER_OPTIONS)
        with writer.connect() as connection:
            with _sqlite_foreign_keys_off(connection):
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                        )
                    command.upgrade(alembic_config(connection), revision)
                    _check_foreign_keys(connection)
    finally:
        if owned:
            engine.dispose()


def current(engine_or_url: Engine | str | URL) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine, owned = _engine(engine_or_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def _engine(engine_or_url: Engine | str | URL) -> tuple[Engine, bool]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return create_store_engine(engine_or_url), True


@contextlib.contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Batch migrations rebuild SQLite tables (copy, drop, rename); with foreign keys on,
    dropping a referenced table would cascade or fail. SQLite's own ALTER TABLE recipe:
    switch enforcement off outside the transaction, check before commit, switch it back on.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        dbapi.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL checked every statement
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise StoreError(
            f"the migration would leave {len(problems)} rows with broken foreign keys "
            f"(first in table {problems[0][0]!r}); nothing was changed"
        )
