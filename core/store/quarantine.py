"""Records a channel sent that could not be mapped, kept aside for a person.

An import does not stop for one bad record (``RecordRejected`` / ``Page.rejected``): the
record goes here and the page goes on. Adding is idempotent per (integration, kind,
record id) because the same bad record comes back on every overlapping import; the row
counts how often it was seen instead of growing a new one each time.

``raw`` must not contain buyer data: the caller strips it before calling ``add``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketsync.core.types import RejectedRecord

from .models import QuarantinedRecord
from .timing import transaction_now
from .upsert import excluded, insert_or_update

MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantined:
    id: int
    integration_id: int
    kind: str
    record_id: str
    reason: str
    raw: Any
    times_seen: int
    created_at: datetime
    last_seen_at: datetime


def add(
    session: Session,
    integration_id: int,
    kind: str,
    record_id: str | None,
    reason: str,
    raw: Any = None,
) -> None:
    """Quarantine a record, or refresh it (reason, raw, last seen, count) if already there.

    Without a ``record_id`` the record is identified by a hash of ``raw`` and ``reason``,
    so the same anonymous bad record is still stored once.
    """
    raw = _jsonable(raw)
    if not record_id:
        record_id = _fingerprint(raw, reason)
    now = transaction_now()
    new = excluded(session, QuarantinedRecord)
    insert_or_update(
        session,
        QuarantinedRecord,
        {
            "integration_id": integration_id,
            "kind": kind,
            "record_id": record_id,
            "reason": reason[:MAX_REASON_CHARS],
            "raw": raw,
            "times_seen": 1,
            "created_at": now,
            "last_seen_at": now,
        },
        conflict=["integration_id", "kind", "record_id"],
        update={
            "reason": new.reason,
            "raw": new.raw,
            "last_seen_at": new.last_seen_at,
            "times_seen": QuarantinedRecord.times_seen + 1,
        },
    )


def add_rejected(session: Session, integration_id: int, kind: str, record: RejectedRecord) -> None:
    """``add`` for a plugin's ``RejectedRecord`` (from ``Page.rejected``)."""
    add(session, integration_id, kind, record.record_id, record.reason, record.raw)


def list_records(
    session: Session, integration_id: int | None = None, kind: str | None = None
) -> list[Quarantined]:
    """Quarantined records, most recently seen first."""
    query = select(QuarantinedRecord)
    if integration_id is not None:
        query = query.where(QuarantinedRecord.integration_id == integration_id)
    if kind is not None:
        query = query.where(QuarantinedRecord.kind == kind)
    query = query.order_by(QuarantinedRecord.last_seen_at.desc(), QuarantinedRecord.id.desc())
    return [
        Quarantined(
            id=row.id,
            integration_id=row.integration_id,
            kind=row.kind,
            record_id=row.record_id,
            reason=row.reason,
            raw=row.raw,
            times_seen=row.times_seen,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
        )
        for row in session.execute(query).scalars()
    ]


def release(session: Session, quarantined_id: int) -> bool:
    """Remove a record once it was dealt with; True when it existed."""
    result = session.execute(delete(QuarantinedRecord).where(QuarantinedRecord.id == quarantined_id))
    return bool(result.rowcount)


def _jsonable(raw: Any) -> Any:
    """JSON-safe copy of ``raw``: whatever JSON cannot hold (Decimal, datetime) becomes text
    rather than failing the whole import page."""
    return json.loads(json.dumps(raw, default=str))


def _fingerprint(raw: Any, reason: str) -> str:
    canonical = json.dumps({"raw": raw, "reason": reason}, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
