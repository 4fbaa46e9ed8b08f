"""Records a channel sent that could not be mapped, kept aside for a person.

An import does not stop for one bad record (``RecordRejected`` / ``Page.rejected``): the
record goes here and the page goes on. Adding is idempotent per (integration, kind,
record id) because the same bad record comes back on every overlapping import; the row
counts how often it was seen instead of growing a new one each time.

What is kept of the record is an allow-list, enforced here whatever the plugin passed
(:func:`scrub`): a value stays only under a key whose name says it is an id, a time, a
status, a SKU, a quantity or an amount, and never under a key that names a person, an
address or a way to reach one; anything else is replaced by its JSON type (``"<object>"``),
which still shows a shape fault. Rows last seen more than :data:`RETENTION` ago are
deleted by the daemon's housekeeping (:func:`expire`), so the table cannot grow for ever.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from marketsync.core.types import RejectedRecord

from .models import QuarantinedRecord
from .timing import transaction_now
from .upsert import excluded, insert_or_update

MAX_REASON_CHARS = 2000
MAX_TRACE_CHARS = 1000
#: a record nobody dealt with and the channel stopped sending goes after this long
RETENTION = timedelta(days=90)
#: the newest reasons ``status`` and the status page show per integration
NEWEST_REASONS = 3

#: words of a key (camelCase or snake_case) under which a scalar value may be kept
KEEP_WORDS = frozenset({
    "id", "ids", "sku", "skus", "asin", "time", "date", "at", "status", "state", "type",
    "kind", "quantity", "qty", "count", "amount", "total", "price", "currency", "marketplace",
    "program", "programs", "level", "by",
})
#: words of a key that mark personal data: never kept, nor anything below them
PERSONAL_WORDS = frozenset({
    "buyer", "recipient", "address", "name", "mail", "email", "phone", "customer",
    "contact", "billing", "street", "city", "postal", "zip", "postcode", "company", "vat",
    "tax", "purchase", "gift", "note", "message", "comment", "person", "line1", "line2",
    "line3", "district", "county",
})
_WORD = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+(?![a-z])\d*|\d+")
_MARKER = re.compile(r"<(object|array|string|number|boolean|null)>")
_MAX_TEXT = 100
_MAX_ITEMS = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantined:
    id: int
    integration_id: int
    kind: str
    record_id: str
    reason: str
    trace: str | None
    raw: Any
    times_seen: int
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """How many records an integration has in quarantine, and the newest reasons."""

    integration_id: int
    count: int
    newest: tuple[str, ...]


def add(
    session: Session,
    integration_id: int,
    kind: str,
    record_id: str | None,
    reason: str,
    raw: Any = None,
    trace: str | None = None,
) -> bool:
    """Quarantine a record, or refresh it (reason, raw, last seen, count) if already there.

    Without a ``record_id`` the record is identified by a hash of ``raw`` and ``reason``,
    so the same anonymous bad record is still stored once.

    :returns: True when the record is new to the quarantine (worth a warning), False when
        it was there already.
    """
    raw = scrub(_jsonable(raw))
    if not record_id:
        record_id = _fingerprint(raw, reason)
    record_id = record_id[:255]
    known = session.execute(select(QuarantinedRecord.id).where(
        QuarantinedRecord.integration_id == integration_id, QuarantinedRecord.kind == kind,
        QuarantinedRecord.record_id == record_id)).first() is not None
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
            "trace": trace[:MAX_TRACE_CHARS] if trace else None,
            "raw": raw,
            "times_seen": 1,
            "created_at": now,
            "last_seen_at": now,
        },
        conflict=["integration_id", "kind", "record_id"],
        update={
            "reason": new.reason,
            "trace": new.trace,
            "raw": new.raw,
            "last_seen_at": new.last_seen_at,
            "times_seen": QuarantinedRecord.times_seen + 1,
        },
    )
    return not known


def add_rejected(session: Session, integration_id: int, kind: str, record: RejectedRecord) -> bool:
    """``add`` for a plugin's ``RejectedRecord`` (from ``Page.rejected``)."""
    return add(session, integration_id, kind, record.record_id, record.reason, record.raw,
               record.trace)


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
    return [_value(row) for row in session.execute(query).scalars()]


def get(session: Session, quarantined_id: int) -> Quarantined | None:
    row = session.get(QuarantinedRecord, quarantined_id)
    return None if row is None else _value(row)


def summaries(session: Session) -> dict[int, Summary]:
    """Per integration: the count and the newest reasons (for ``status`` and metrics)."""
    counts = dict(session.execute(
        select(QuarantinedRecord.integration_id, func.count())
        .group_by(QuarantinedRecord.integration_id)).all())
    found: dict[int, Summary] = {}
    for integration_id, count in counts.items():
        newest = session.execute(
            select(QuarantinedRecord.record_id, QuarantinedRecord.reason)
            .where(QuarantinedRecord.integration_id == integration_id)
            .order_by(QuarantinedRecord.last_seen_at.desc(), QuarantinedRecord.id.desc())
            .limit(NEWEST_REASONS)).all()
        found[integration_id] = Summary(
            integration_id=integration_id, count=count,
            newest=tuple(f"{record_id}: {reason.splitlines()[0][:200]}"
                         for record_id, reason in newest))
    return found


def release(session: Session, quarantined_id: int) -> bool:
    """Remove a record once it was dealt with; True when it existed."""
    result = session.execute(delete(QuarantinedRecord).where(QuarantinedRecord.id == quarantined_id))
    return bool(result.rowcount)


def release_records(session: Session, integration_id: int, kind: str,
                    record_ids: set[str]) -> int:
    """Remove those of ``record_ids`` that are quarantined (they were imported after all);
    how many. One small query when the quarantine holds nothing of this kind."""
    held = set(session.execute(select(QuarantinedRecord.record_id).where(
        QuarantinedRecord.integration_id == integration_id,
        QuarantinedRecord.kind == kind)).scalars())
    found = held & record_ids
    if not found:
        return 0
    session.execute(delete(QuarantinedRecord).where(
        QuarantinedRecord.integration_id == integration_id, QuarantinedRecord.kind == kind,
        QuarantinedRecord.record_id.in_(found)))
    return len(found)


def expire(session: Session, now: datetime) -> int:
    """Delete records last seen more than :data:`RETENTION` before ``now``; how many."""
    result = session.execute(delete(QuarantinedRecord).where(
        QuarantinedRecord.last_seen_at < now - RETENTION))
    return int(result.rowcount or 0)


def scrub(value: Any, key: str | None = None) -> Any:
    """``value`` cut down to the allow-list (see the module docstring); ``key`` is the name
    it was found under (None: the top of the record, which is always an envelope)."""
    words = {w.lower() for w in _WORD.findall(key)} if key else set()
    if words & PERSONAL_WORDS:
        return value if isinstance(value, str) and _MARKER.fullmatch(value) else _json_type(value)
    if isinstance(value, dict):
        return {str(k)[:_MAX_TEXT]: scrub(v, str(k)) for k, v in list(value.items())[:_MAX_ITEMS]}
    if isinstance(value, list):
        return [scrub(v, key) for v in value[:_MAX_ITEMS]]
    if isinstance(value, str) and _MARKER.fullmatch(value):
        return value
    if key is None or not words & KEEP_WORDS:
        return _json_type(value)
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "<boolean>"
    if isinstance(value, (int, float)):
        return "<number>"
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, list):
        return "<array>"
    if isinstance(value, dict):
        return "<object>"
    return "<null>"


def _value(row: QuarantinedRecord) -> Quarantined:
    return Quarantined(
        id=row.id,
        integration_id=row.integration_id,
        kind=row.kind,
        record_id=row.record_id,
        reason=row.reason,
        trace=row.trace,
        raw=row.raw,
        times_seen=row.times_seen,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


def _jsonable(raw: Any) -> Any:
    """JSON-safe copy of ``raw``: whatever JSON cannot hold (Decimal, datetime) becomes text
    rather than failing the whole import page."""
    return json.loads(json.dumps(raw, default=str))


def _fingerprint(raw: Any, reason: str) -> str:
    canonical = json.dumps({"raw": raw, "reason": reason}, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
