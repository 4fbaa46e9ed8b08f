"""Import cursors: where each (integration, kind) import stands.

Meltano's rule: the bookmark is committed with the data it covers. Call ``save`` inside
the same ``store.run`` unit of work that writes the page, so a crash either keeps both
the page and the new cursor or neither.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketsync.core.types import Cursor

from .models import JobCursor
from .timing import transaction_now
from .upsert import excluded, insert_or_update


def load(session: Session, integration_id: int, kind: str) -> Cursor:
    """The stored cursor, or an empty ``Cursor()`` (start from the beginning)."""
    data = session.execute(
        select(JobCursor.cursor).where(
            JobCursor.integration_id == integration_id, JobCursor.kind == kind
        )
    ).scalar_one_or_none()
    return Cursor.from_json(data)


def save(session: Session, integration_id: int, kind: str, cursor: Cursor) -> None:
    """Store ``cursor`` verbatim, replacing the previous one."""
    data = cursor.to_json()
    try:
        json.dumps(data)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"cursor for integration {integration_id} kind {kind!r} cannot be stored: "
            f"its state is not JSON ({error})"
        ) from None
    now = transaction_now()
    new = excluded(session, JobCursor)
    insert_or_update(
        session,
        JobCursor,
        {"integration_id": integration_id, "kind": kind, "cursor": data, "updated_at": now},
        conflict=["integration_id", "kind"],
        update={"cursor": new.cursor, "updated_at": new.updated_at},
    )


def reset(session: Session, integration_id: int, kind: str) -> bool:
    """Forget the cursor so the next import starts over; True when there was one."""
    result = session.execute(
        delete(JobCursor).where(JobCursor.integration_id == integration_id, JobCursor.kind == kind)
    )
    return bool(result.rowcount)
