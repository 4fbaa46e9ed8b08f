"""Time in the store: aware UTC columns and the one "now" of a transaction.

Two problems solved here:

* SQLite has no time zone type. SQLAlchemy stores ``DateTime(timezone=True)`` there as
  text without an offset and reads back naive datetimes, while PostgreSQL returns aware
  ones in the session's zone. ``UTCDateTime`` normalises both ways, so the rest of the
  program only ever sees aware UTC, and refuses naive input instead of guessing.
* Unit-of-work functions run in worker threads, where ``core.clock.now()`` cannot see
  trio's (possibly mocked) clock and would fall back to the real wall time. ``Store.run``
  therefore reads the clock in the trio thread and hands the value to the worker through
  a context variable; ``transaction_now()`` returns it, so every timestamp written by one
  transaction is the same instant, and simulated days stay simulated.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from marketsync.core import clock

UTC = timezone.utc

_transaction_now: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "marketsync_store_transaction_now", default=None
)


def transaction_now() -> datetime:
    """The wall time of the running unit of work (aware UTC)."""
    pinned = _transaction_now.get()
    return pinned if pinned is not None else clock.now()


@contextlib.contextmanager
def pinned_now(moment: datetime) -> Iterator[None]:
    """Make ``transaction_now()`` return ``moment`` inside the block (this thread/context)."""
    if moment.tzinfo is None:
        raise ValueError("pinned_now needs an aware datetime")
    token = _transaction_now.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _transaction_now.reset(token)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always returns aware UTC and rejects naive input."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} cannot be stored: give it a time zone "
                "(the store keeps UTC)"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # stored as text without an offset; always UTC so text order is time order
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
