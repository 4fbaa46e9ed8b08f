"""Job health per (integration, kind), persisted so another process can report it.

The scheduler keeps the truth in memory while it runs; these rows are its public
record for ``marketsync status`` and the status page (HA coordinator's
``last_update_success``, written down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import IntegrationRow, JobRun
from .timing import transaction_now
from .upsert import insert_or_update

#: errors are for people reading a status line, not for storing tracebacks
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class JobHealth:
    alias: str
    kind: str
    last_started: datetime | None
    last_finished: datetime | None
    last_success: datetime | None
    last_error: str | None
    consecutive_failures: int
    next_run_at: datetime | None


def started(session: Session, integration_id: int, kind: str) -> None:
    """A run of ``kind`` began now."""
    _ensure(session, integration_id, kind).last_started = transaction_now()


def finished(
    session: Session,
    integration_id: int,
    kind: str,
    *,
    error: str | None = None,
    next_run_at: datetime | None = None,
) -> int:
    """A run ended, failed when ``error`` is given (a short message without secrets).

    :returns: consecutive failures so far (0 after a success).
    """
    row = _ensure(session, integration_id, kind)
    now = transaction_now()
    row.last_finished = now
    if error is None:
        row.last_success = now
        row.consecutive_failures = 0
    else:
        row.last_error = error[:MAX_ERROR_CHARS]
        row.consecutive_failures += 1
    row.next_run_at = next_run_at
    return row.consecutive_failures


def scheduled(session: Session, integration_id: int, kind: str, next_run_at: datetime) -> None:
    _ensure(session, integration_id, kind).next_run_at = next_run_at


def health(session: Session, integration_id: int | None = None) -> list[JobHealth]:
    """Job health rows, by alias and kind; all integrations unless one is given."""
    query = (
        select(JobRun, IntegrationRow.alias)
        .join(IntegrationRow, IntegrationRow.id == JobRun.integration_id)
        .order_by(IntegrationRow.alias, JobRun.kind)
    )
    if integration_id is not None:
        query = query.where(JobRun.integration_id == integration_id)
    return [
        JobHealth(
            alias=alias,
            kind=row.kind,
            last_started=row.last_started,
            last_finished=row.last_finished,
            last_success=row.last_success,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            next_run_at=row.next_run_at,
        )
        for row, alias in session.execute(query)
    ]


def _ensure(session: Session, integration_id: int, kind: str) -> JobRun:
    insert_or_update(
        session,
        JobRun,
        {"integration_id": integration_id, "kind": kind, "consecutive_failures": 0},
        conflict=["integration_id", "kind"],
    )
    return session.execute(
        select(JobRun).where(JobRun.integration_id == integration_id, JobRun.kind == kind)
    ).scalar_one()
