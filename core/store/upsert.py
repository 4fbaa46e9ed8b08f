"""INSERT ... ON CONFLICT for both databases.

Select-then-insert races when two replicas (or the daemon and a CLI command) write the
same natural key at once; both SQLite and PostgreSQL have the same ``ON CONFLICT``
clause, which SQLAlchemy exposes per dialect. This picks the right one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_or_update(
    session: Session,
    model: type,
    values: Mapping[str, Any],
    *,
    conflict: Iterable[str],
    update: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``values``; on a clash of the unique ``conflict`` columns apply ``update``
    instead (values or SQL expressions; ``excluded`` refers to the row we tried to insert),
    or do nothing when ``update`` is empty or None."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(model).values(dict(values))
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict), set_=dict(update)
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    session.execute(statement)


def excluded(session: Session, model: type) -> Any:
    """The ``excluded`` pseudo-row of an upsert on ``model`` (the values we tried to insert)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).excluded
