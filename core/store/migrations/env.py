"""Alembic environment for marketsync (mlflow's pattern: migrations ship in the package).

At run time ``core/store/migrate.py`` passes an open connection in
``config.attributes["connection"]`` and no ini file exists; the developer path
(``alembic -c alembic.ini -x url=...``) builds its own engine from ``-x url``.

``render_as_batch=True`` because SQLite cannot ALTER most things: alembic copies the
table instead, and the naming convention on the metadata lets it name the constraints.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from marketsync.core.store.models import Base
from marketsync.core.store.timing import UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our column type decorators as plain SQLAlchemy types.

    A migration must keep working when the model code it was generated from changes,
    so revisions never import marketsync.
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database with: alembic -x url=sqlite:////path/to.db ...")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
